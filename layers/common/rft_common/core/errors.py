"""Domain errors. Entry points map each class to one HTTP status in one place."""

from __future__ import annotations


class DomainError(Exception):
    """A request that cannot be honoured; ``field`` names the input at fault, if any."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    pass


class Conflict(DomainError):
    pass


class InvalidRequest(DomainError):
    pass


class DatabaseUnavailable(DomainError):
    pass


class FeatureDisabled(DomainError):
    pass


class Unauthorized(DomainError):
    """No credentials, or credentials that cannot be trusted (401)."""


class Forbidden(DomainError):
    """Trusted credentials that do not allow this (403)."""


class PaymentRequired(DomainError):
    """No payment that Stripe confirms as succeeded stands behind the request (402)."""


class CredentialRefused(DomainError):
    """A reset token that is used, expired or unknown, or a wrong current password, sent
    by someone already signed in or holding a link (400: not 401, which signs the
    dashboard out)."""


class BadSignature(DomainError):
    """A webhook whose signature does not verify (400)."""


class PaymentProviderUnavailable(DomainError):
    """Stripe could not be reached or failed (502)."""


class TooManyRequests(DomainError):
    """Too many attempts in a while; try again later (429)."""


class MergedAway(DomainError):
    """The user was merged into another: 301 to the survivor's ``location``."""

    def __init__(self, user_id: int, survivor_id: int, location: str) -> None:
        super().__init__(f"user {user_id} was merged into user {survivor_id}")
        self.survivor_id = survivor_id
        self.location = location
