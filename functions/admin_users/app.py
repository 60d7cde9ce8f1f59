"""The admin users API: /api/admin/users and below, and /api/admin/renewals; admins only.

Routes are in ``rft_common.routes``: ``admin_users``, ``admin_duplicates``,
``admin_privacy`` and ``admin_renewals``. ``admit`` (the flag, then the bearer token)
runs before the resolver, so a refused request never reaches parameter validation or a
route.
"""

from rft_common.api import api_function
from rft_common.routes import admin_duplicates, admin_payments, admin_privacy, admin_renewals
from rft_common.routes.admin_users import admit, router

app, lambda_handler = api_function(
    router,
    admin_payments.router,
    admin_duplicates.router,
    admin_privacy.router,
    admin_renewals.router,
    admit=admit,
)
