"""Staff sign-in for the admin dashboard: /api/admin/auth/login, /me, /refresh, /logout.

Routes are in ``rft_common.staff.routes``; the logic in ``rft_common.staff.service``.
"""

from rft_common.core import snapstart
from rft_common.core.emails import load_email_validator
from rft_common.http.api import api_function
from rft_common.staff.routes import router

snapstart.warm(load_email_validator)  # its requests check email addresses

app, lambda_handler = api_function(router)
