"""The admin users API: /api/admin/users and below, and /api/admin/renewals; admins only.

Routes are in the domains' route modules (users, duplicates, privacy, renewals and the
checkout's unplaced payments). The admin gate (``staff.gate.admit``: the flag, then the
bearer token) runs before the resolver, so a refused request never reaches parameter
validation or a route.
"""

from rft_common.checkout import admin_routes as admin_payments
from rft_common.core import snapstart
from rft_common.core.emails import load_email_validator
from rft_common.http.api import api_function
from rft_common.privacy import routes as admin_privacy
from rft_common.renewals import routes as admin_renewals
from rft_common.staff.gate import admit
from rft_common.users import duplicate_routes as admin_duplicates
from rft_common.users.routes import router

app, lambda_handler = api_function(
    router,
    admin_payments.router,
    admin_duplicates.router,
    admin_privacy.router,
    admin_renewals.router,
    admit=admit,
)

snapstart.warm(load_email_validator)  # its requests check email addresses
