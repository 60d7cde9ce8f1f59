"""Staff sign-in for the admin dashboard: /api/admin/auth/login, /me, /refresh, /logout.

Routes are in ``rft_common.routes.admin_auth``; the logic in ``rft_common.staff``.
"""

from rft_common.api import api_function
from rft_common.routes.admin_auth import router

app, lambda_handler = api_function(router)
