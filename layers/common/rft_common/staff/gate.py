"""The admin gate: every request to the admin users function passes ``admit`` before it
is routed, and its routes ask ``acting_admin`` who is acting.

``admit`` checks the ``admin_users_api`` flag first, then the bearer token
(``staff.tokens``), then, in one primary-key lookup, that the account is still active,
still an admin, and that its sessions have not been ended since the token was issued
(its ``token_version``, moved by a password, role or active-state change and by signing
out everywhere). A deactivated admin's token thus stops at their next request, not at
its expiry. It runs ahead of the resolver, rather than as a route middleware,
because Powertools validates parameters before middlewares run: an anonymous caller must
get 401, not a 422 describing the inputs. The admitted admin travels in the resolver's
request context (``append_context``), which the resolver clears after each request.
Logs name the admin by their user id, never their email.

Also here: how every admin route documents the gate (its security scheme and refusals).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from rft_common.aws.flags import ADMIN_USERS_API, is_enabled
from rft_common.core.errors import DomainError, FeatureDisabled, Unauthorized
from rft_common.core.observability import logger, metrics
from rft_common.db.postgres import run_transaction
from rft_common.http.api import BEARER_SCHEME, ERROR_RESPONSES, error_doc
from rft_common.staff.tokens import Staff, authenticate_admin

ACTING_ADMIN = "acting_admin"
"""The request context's key for the admitted admin."""
SECURITY: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}]
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: error_doc(
        "No bearer token, one that is invalid, expired or not yet valid, or a session "
        "ended since (password, role or active state changed, signed out everywhere)"
    ),
    403: error_doc("A valid token whose role is not admin"),
    **ERROR_RESPONSES,
    503: error_doc(
        "Database unreachable, the admin_users_api flag is off, or sign-in unconfigured"
    ),
}
ACCOUNT = "SELECT is_active, role, token_version FROM users WHERE id = :id"
READ_ERRORS = {status: response for status, response in ADMIN_ERRORS.items() if status != 415}
"""A GET has no body, so no unsupported media type."""


def admit(event: dict[str, Any]) -> dict[str, Any]:
    """The request context to route ``event`` with (its admin), or a ``DomainError``
    saying why not (logged, and counted in ``AdminRequestsRefused``)."""
    try:
        if not is_enabled(ADMIN_USERS_API):
            raise FeatureDisabled(
                "the admin users API is switched off (feature flag admin_users_api)"
            )
        admin = authenticate_admin(APIGatewayProxyEvent(event).headers.get("authorization"))
        _check_still_admin(admin)
    except DomainError as refusal:
        logger.info("admin request refused", extra={"reason": refusal.message})
        metrics.add_metric(name="AdminRequestsRefused", unit=MetricUnit.Count, value=1)
        raise
    return {ACTING_ADMIN: admin}


def _check_still_admin(admin: Staff) -> None:
    account = run_transaction(
        lambda connection: connection.execute(ACCOUNT, {"id": admin.id}).first()
    )
    if not admin.still_admin(account):
        raise Unauthorized("this session has ended; sign in again")


def acting_admin(router: Router) -> Staff:
    """The admin ``admit`` accepted for the request ``router`` is serving (refusing,
    should a route ever be reached without ``admit``)."""
    admin = router.context.get(ACTING_ADMIN)
    if not isinstance(admin, Staff):
        raise Unauthorized("sign in as an admin: send Authorization: Bearer <token>")
    return admin
