"""The local stack's admin signing secrets, under the name the company's browser checks use.

The harnesses in ``../shared/realclient`` (admin-ui, admin-app) mint an admin token with
``from rft_tools.local_admin import LOCAL_ADMIN_JWT_SECRET``; this module keeps that import
working. The secrets live in ``rft_tools.local.admin``.
"""

from rft_tools.local.admin import LOCAL_ADMIN_JWT_SECRET, LOCAL_ADMIN_REFRESH_SECRET

__all__ = ["LOCAL_ADMIN_JWT_SECRET", "LOCAL_ADMIN_REFRESH_SECRET"]
