"""Staff sign-in for the admin dashboard: /api/admin/auth/login, /me, /refresh, /logout.

Routes are in ``rft_common.staff.routes``; the logic in ``rft_common.staff.service``.
"""

from rft_common.http.api import api_function
from rft_common.staff.routes import router

app, lambda_handler = api_function(router)
