"""Staff sign-in on the unified users table: passwords, failed-login limits, sessions.

Staff (role ``admin`` or ``instructor``) have rows in ``users`` with bcrypt hashes the
legacy Node backend wrote (``$2a$``/``$2b$``, cost 12); customers never sign in here.

- **Constant time.** Every attempt runs one bcrypt check: against the user's hash, or
  against ``DUMMY_HASH`` (same cost) for an unknown email, a customer or a staff row
  without a password, so the time taken does not tell whether an account exists.
  Passwords are cut to bcrypt's 72 bytes, as bcryptjs (the legacy backend) did.
- **Failed logins** are rows of ``admin_login_failures`` per normalised email and
  client (``client_key``: ``login_client``, a keyed fingerprint of the caller's IPv4
  address or IPv6 /64, so a stranger cannot step through the addresses of one
  connection). An attempt first reserves a row, under a transaction-level advisory
  lock on that email, after counting the rows of the last ``FAILURE_WINDOW``: with
  ``MAX_FAILURES`` already there from its client, or ``MAX_ACCOUNT_FAILURES`` from all
  clients, it is refused (429) before any password check. So a stranger guessing a
  named admin's password locks out only themselves, and the admin still signs in from
  their own client; only a stranger with twenty addresses or more reaches the
  account's ceiling, which keeps distributed guessing to 100 passwords per 15 minutes
  (9,600 a day) and then refuses everyone until the window passes (AWS WAF's
  per-address rate rule on the login, in the template, comes first). A success
  removes its client's rows for the email, not the others'; a failure keeps its
  reservation. Concurrent attempts, from any number of Lambdas, thus queue only for
  the count and the insert (not the bcrypt check), and at most ``MAX_FAILURES`` of
  them per client are checked per window. An attempt that dies midway counts as a
  failure, the safe side.
- **Sessions.** An access token (15 minutes) and a refresh token (7 days, in an
  HttpOnly cookie) carrying the user's ``token_version``. A refresh is refused once
  that version moved on (a trigger moves it when the password, role or active state
  changes), when the token was signed out (``admin_revoked_refresh_tokens``), or when
  the user is no longer active staff.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import ip_address, ip_network
from typing import Any

from rft_common.aws.fingerprints import keyed_fingerprint
from rft_common.core.emails import canonical_email, normalize_email
from rft_common.core.errors import (
    Conflict,
    CredentialRefused,
    Forbidden,
    InvalidRequest,
    TooManyRequests,
    Unauthorized,
)
from rft_common.core.settings import get_settings
from rft_common.core.vocabulary import STAFF_ROLES
from rft_common.db.locks import LOCK_RESET_LIMITS, LOCK_STAFF_SIGN_IN
from rft_common.db.postgres import Connection, run_transaction
from rft_common.staff.tokens import (
    ACCESS_TOKEN_SECONDS,
    Staff,
    access_secret,
    issue_access_token,
    issue_refresh_token,
    read_refresh_token,
    refresh_secret,
)

FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES = 5
"""Per email and client: what one stranger can try before being refused."""
MAX_ACCOUNT_FAILURES = 100
"""Per email from all clients together: the ceiling on distributed guessing."""
IPV6_CLIENT_PREFIX = 64
"""An IPv6 client is its /64: one connection usually holds a whole /64."""
BCRYPT_ROUNDS = 12
BCRYPT_MAX_BYTES = 72
MIN_PASSWORD_LENGTH = 8
"""The dashboard's login form refuses shorter passwords before sending them."""
DUMMY_HASH = b"$2b$12$/wBlvEbOfPYPSZXPU7LlxuBmrdDPqpcs9d52gvlMH/GwZnxrqQB/e"
"""A cost-12 hash of no one's password: what an attempt without an account checks."""
INVALID_CREDENTIALS = "invalid email or password"

PERMISSIONS = {
    "admin": [
        "courses.manage",
        "bookings.manage",
        "users.manage",
        "analytics.view",
        "settings.manage",
    ],
    "instructor": ["courses.view", "bookings.view", "analytics.view"],
}
"""What the dashboard's menus check; the legacy login's list (an admin may do everything)."""


@dataclass(frozen=True)
class StaffMember:
    id: int
    email: str
    name: str
    role: str
    last_login: datetime | None


@dataclass(frozen=True)
class Session:
    """What a successful sign-in hands out."""

    access_token: str
    refresh_token: str
    user: StaffMember
    expires_in: int = ACCESS_TOKEN_SECONDS


def login_email(raw: str) -> str:
    """The email as ``users.email_normalized`` holds it: the identity's form, accents
    composed however they were typed (``emails.canonical_email``)."""
    return canonical_email(raw.strip())


def hash_password(password: str, rounds: int = BCRYPT_ROUNDS) -> str:
    import bcrypt

    return bcrypt.hashpw(_password_bytes(password), bcrypt.gensalt(rounds)).decode()


def _password_bytes(password: str) -> bytes:
    return password.encode("utf-8")[:BCRYPT_MAX_BYTES]


def _password_matches(password: str, stored_hash: str | None) -> bool:
    import bcrypt

    candidate = stored_hash.encode() if stored_hash else DUMMY_HASH
    try:
        matches = bcrypt.checkpw(_password_bytes(password), candidate)
    except ValueError:  # not a bcrypt hash: check the dummy so the time is the same
        bcrypt.checkpw(_password_bytes(password), DUMMY_HASH)
        return False
    return matches and stored_hash is not None


FORGET_OLD_FAILURES = (
    "DELETE FROM admin_login_failures WHERE attempted_at < now() - CAST(:window AS interval)"
)
RECENT_FAILURES = """
    SELECT count(*) FILTER (WHERE client_key = :client) AS from_client, count(*) AS from_all
    FROM admin_login_failures
    WHERE email_normalized = :email AND attempted_at >= now() - CAST(:window AS interval)
"""
RESERVE_ATTEMPT = """
    INSERT INTO admin_login_failures (email_normalized, client_key) VALUES (:email, :client)
    RETURNING id
"""
RELEASE_ATTEMPT = "DELETE FROM admin_login_failures WHERE id = :id"
CLEAR_FAILURES = (
    "DELETE FROM admin_login_failures WHERE email_normalized = :email AND client_key = :client"
)
ACCOUNT_BY_EMAIL = """
    SELECT id, email, name, role, password_hash, is_active, token_version, last_login_at
    FROM users WHERE email_normalized = :email
"""
RECORD_SIGN_IN = """
    UPDATE users SET last_login_at = now()
    WHERE id = :id AND is_active AND role IN ('admin', 'instructor')
    RETURNING token_version, last_login_at
"""
ACCOUNT_BY_ID = """
    SELECT id, email, name, role, is_active, token_version, last_login_at
    FROM users WHERE id = :id
"""
IS_REVOKED = "SELECT EXISTS (SELECT FROM admin_revoked_refresh_tokens WHERE jti = :jti)"
REVOKE = """
    INSERT INTO admin_revoked_refresh_tokens (jti, user_id, expires_at)
    VALUES (:jti, :user_id, to_timestamp(:expires_at))
    ON CONFLICT (jti) DO NOTHING
"""
FORGET_EXPIRED_REVOCATIONS = "DELETE FROM admin_revoked_refresh_tokens WHERE expires_at < now()"


def login_client(address: str | None) -> str:
    """Who is signing in, for the failure counts: a keyed fingerprint of the source
    address (an IPv6 one by its /64); ``''`` when the address is unknown."""
    try:
        parsed = ip_address((address or "").strip())
    except ValueError:
        return ""
    if parsed.version == 6:
        network = ip_network(f"{parsed}/{IPV6_CLIENT_PREFIX}", strict=False)
        return keyed_fingerprint(str(network))
    return keyed_fingerprint(str(parsed))


def _reserve_attempt(email: str, client: str) -> int:
    """Record an attempt for ``email`` from ``client`` as a failure until it succeeds, or
    refuse it (429)."""

    def reserve(connection: Connection) -> int:
        window = {"window": FAILURE_WINDOW}
        connection.execute(LOCK_STAFF_SIGN_IN, {"email": email})
        connection.execute(FORGET_OLD_FAILURES, window)
        recent = connection.execute(
            RECENT_FAILURES, {"email": email, "client": client, **window}
        ).one()
        if recent.from_client >= MAX_FAILURES or recent.from_all >= MAX_ACCOUNT_FAILURES:
            raise TooManyRequests("too many failed sign-ins for this email; try again later")
        return connection.execute(RESERVE_ATTEMPT, {"email": email, "client": client}).scalar_one()

    return run_transaction(reserve)


def _display_name(row: Any) -> str:
    return row.name or row.email


def sign_in(email: str, password: str, *, client: str = "") -> Session:
    """A session for a staff member's email and password, or why not.

    ``Unauthorized`` for a wrong email or password (and for customers),
    ``Forbidden`` for a deactivated account with the right password,
    ``TooManyRequests`` after ``MAX_FAILURES`` failures from ``client`` (``login_client``)
    or ``MAX_ACCOUNT_FAILURES`` from all clients in ``FAILURE_WINDOW``.
    """
    normalized = login_email(email)
    attempt = _reserve_attempt(normalized, client)
    account = run_transaction(
        lambda connection: connection.execute(ACCOUNT_BY_EMAIL, {"email": normalized}).first()
    )
    staff = account is not None and account.role in STAFF_ROLES
    if not _password_matches(password, account.password_hash if staff else None):
        raise Unauthorized(INVALID_CREDENTIALS)
    if not account.is_active:
        run_transaction(lambda connection: connection.execute(RELEASE_ATTEMPT, {"id": attempt}))
        raise Forbidden("this account is deactivated; ask an administrator")

    def record(connection: Connection) -> Any:
        connection.execute(CLEAR_FAILURES, {"email": normalized, "client": client})
        return connection.execute(RECORD_SIGN_IN, {"id": account.id}).first()

    signed_in = run_transaction(record)
    if signed_in is None:  # deactivated or demoted since the password check
        raise Forbidden("this account is deactivated; ask an administrator")
    member = StaffMember(
        id=account.id,
        email=account.email,
        name=_display_name(account),
        role=account.role,
        last_login=signed_in.last_login_at,
    )
    return Session(
        access_token=_access_token(member, signed_in.token_version),
        refresh_token=issue_refresh_token(
            refresh_secret(), user_id=member.id, token_version=signed_in.token_version
        ),
        user=member,
    )


def _access_token(member: StaffMember, token_version: int) -> str:
    return issue_access_token(
        access_secret(),
        user_id=member.id,
        email=member.email,
        role=member.role,
        token_version=token_version,
    )


def _active_staff(connection: Connection, user_id: int) -> Any:
    row = connection.execute(ACCOUNT_BY_ID, {"id": user_id}).first()
    if row is None or not row.is_active or row.role not in STAFF_ROLES:
        raise Unauthorized("this account can no longer sign in")
    return row


def refresh_access(refresh_token: str | None) -> str:
    """A new access token for a refresh token that is still good, or ``Unauthorized``."""
    claims = read_refresh_token(refresh_token)

    def check(connection: Connection) -> StaffMember:
        row = _active_staff(connection, claims.user_id)
        revoked = connection.execute(IS_REVOKED, {"jti": claims.jti}).scalar_one()
        if revoked or row.token_version != claims.token_version:
            raise Unauthorized("this session has ended; sign in again")
        return StaffMember(row.id, row.email, _display_name(row), row.role, row.last_login_at)

    return _access_token(run_transaction(check), claims.token_version)


def sign_out(refresh_token: str | None) -> None:
    """Revoke the session's refresh token, if it is a valid one (signing out never fails)."""
    try:
        claims = read_refresh_token(refresh_token)
    except Unauthorized:
        return

    def revoke(connection: Connection) -> None:
        connection.execute(FORGET_EXPIRED_REVOCATIONS)
        connection.execute(
            REVOKE,
            {"jti": claims.jti, "user_id": claims.user_id, "expires_at": claims.expires_at},
        )

    run_transaction(revoke)


END_SESSIONS = "UPDATE users SET token_version = token_version + 1 WHERE id = :id"


def end_all_sessions(staff: Staff) -> None:
    """Sign ``staff`` out everywhere: every access and refresh token issued so far stops."""
    run_transaction(lambda connection: connection.execute(END_SESSIONS, {"id": staff.id}))


def current_staff(staff: Staff) -> tuple[StaffMember, list[str]]:
    """The signed-in staff member as stored now, and their permissions."""
    row = run_transaction(lambda connection: _active_staff(connection, staff.id))
    if row.token_version != staff.token_version:
        raise Unauthorized("this session has ended; sign in again")
    member = StaffMember(row.id, row.email, _display_name(row), row.role, row.last_login_at)
    return member, PERMISSIONS[member.role]


SAVE_STAFF_MEMBER = """
    INSERT INTO users (email, name, role, password_hash)
    VALUES (:email, :name, :role, :password_hash)
    ON CONFLICT (email_normalized) DO UPDATE
        SET name = EXCLUDED.name, role = EXCLUDED.role,
            password_hash = EXCLUDED.password_hash, is_active = true, updated_at = now()
        WHERE users.role IN ('admin', 'instructor')
    RETURNING id, xmax = 0 AS created
"""


def save_staff_member(
    connection: Connection, *, email: str, name: str, role: str, password: str
) -> tuple[int, bool]:
    """Create a staff member, or set an existing one's name, role and password (which
    ends their sessions) and reactivate them: their id, and whether it is new.

    An email that belongs to a customer is refused (``Conflict``): a customer's record
    never silently becomes a staff login.
    """
    if role not in STAFF_ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(STAFF_ROLES)}", field="role")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(
            f"the password needs at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    try:
        normalized = normalize_email(email)
    except ValueError as error:
        raise InvalidRequest(str(error), field="email") from None
    row = connection.execute(
        SAVE_STAFF_MEMBER,
        {
            "email": normalized,
            "name": name.strip(),
            "role": role,
            "password_hash": hash_password(password),
        },
    ).first()
    if row is None:
        raise Conflict("this email belongs to a customer, not a staff member", field="email")
    return row.id, row.created


# --- passwords: change, forgot, reset (README "Email") ---------------------------------

RESET_TOKEN_LIFETIME = timedelta(minutes=30)
RESET_REQUEST_WINDOW = timedelta(hours=1)
RESET_REQUESTS_PER_EMAIL = 3
"""Beyond this, a forgot-password request for the email sends nothing (and says the same)."""
RESET_REQUESTS_PER_CLIENT = 20
"""Beyond this, a client's forgot-password requests are refused (429), whatever the email."""
INVALID_RESET_TOKEN = "this reset link is not valid: it was used, has expired or is unknown"  # noqa: S105 - not a password
WRONG_CURRENT_PASSWORD = "the current password is not right"  # noqa: S105 - not a password

COUNT_RESET_REQUESTS = """
    WITH forgotten AS (
        DELETE FROM staff_password_reset_requests
        WHERE requested_at < now() - CAST(:window AS interval)
    )
    SELECT count(*) FILTER (WHERE limit_key = :email_key) AS for_email,
           count(*) FILTER (WHERE limit_key = :client_key) AS for_client
    FROM staff_password_reset_requests
    WHERE limit_key IN (:email_key, :client_key)
      AND requested_at >= now() - CAST(:window AS interval)
"""
RECORD_RESET_REQUEST = """
    INSERT INTO staff_password_reset_requests (limit_key) VALUES (:email_key), (:client_key)
"""
# Runs the same whether or not the email is staff's (the rows are just not there).
ISSUE_RESET_LINK = """
    WITH account AS (
        SELECT id, email, coalesce(nullif(btrim(name), ''), email) AS name FROM users
        WHERE email_normalized = :email AND role IN ('admin', 'instructor') AND is_active
          AND CAST(:allowed AS boolean)
    ), token AS (
        INSERT INTO staff_password_resets (token_hash, user_id, expires_at)
        SELECT :token_hash, id, now() + CAST(:lifetime AS interval) FROM account
        RETURNING user_id, expires_at
    )
    INSERT INTO email_outbox (kind, dedupe_key, recipient, payload)
    SELECT 'staff_password_reset', encode(:token_hash, 'hex'), a.email,
           jsonb_build_object('name', a.name, 'link', CAST(:link AS text),
                              'minutes', CAST(:minutes AS integer), 'expires_at', t.expires_at)
    FROM account AS a JOIN token AS t ON t.user_id = a.id
"""
SPEND_RESET_LINK = """
    UPDATE staff_password_resets SET used_at = now()
    WHERE token_hash = :token_hash AND used_at IS NULL AND expires_at > now()
    RETURNING user_id
"""
ACCOUNT_FOR_CHANGE = """
    SELECT id, email, name, role, is_active, password_hash FROM users WHERE id = :id
"""
# The users_revoke_tokens trigger moves token_version on: every refresh token of the
# account stops working. Other reset links of the account are spent too.
SET_NEW_HASH = """
    WITH changed AS (
        UPDATE users SET password_hash = :password_hash, updated_at = now()
        WHERE id = :id AND is_active AND role IN ('admin', 'instructor')
        RETURNING id, email, email_normalized, token_version,
                  coalesce(nullif(btrim(name), ''), email) AS name
    ), spent AS (
        UPDATE staff_password_resets SET used_at = now()
        WHERE user_id IN (SELECT id FROM changed) AND used_at IS NULL
    ), failures AS (
        DELETE FROM admin_login_failures
        WHERE email_normalized IN (SELECT email_normalized FROM changed)
    ), notice AS (
        INSERT INTO email_outbox (kind, dedupe_key, recipient, payload)
        SELECT 'staff_password_changed', id || ':' || token_version, email,
               jsonb_build_object('name', name, 'changed_at', now(),
                                  'by_reset', CAST(:by_reset AS boolean))
        FROM changed
        ON CONFLICT (kind, dedupe_key) DO NOTHING
    )
    SELECT id, email, name, token_version FROM changed
"""


def _check_new_password(password: str, field: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(
            f"the password needs at least {MIN_PASSWORD_LENGTH} characters", field=field
        )


def _token_hash(token: str) -> bytes:
    import hashlib

    return hashlib.sha256(token.encode()).digest()


def reset_link(token: str) -> str:
    settings = get_settings()
    return settings.admin_reset_url.replace("{AdminOrigin}", settings.admin_origin).replace(
        "{token}", token
    )


def request_password_reset(email: str, client: str) -> None:
    """Email a reset link if ``email`` is active staff's; the same outcome otherwise.

    ``TooManyRequests`` only for a client over its limit (which says nothing about the
    email); an email over its own limit is silently sent nothing.
    """
    import secrets

    normalized = login_email(email)
    email_key = "email:" + _token_hash(normalized).hex()
    client_key = "client:" + client
    token = secrets.token_urlsafe(32)

    def work(connection: Connection) -> None:
        connection.execute(LOCK_RESET_LIMITS, {"keys": [email_key, client_key]})
        counts = connection.execute(
            COUNT_RESET_REQUESTS,
            {"email_key": email_key, "client_key": client_key, "window": RESET_REQUEST_WINDOW},
        ).one()
        if counts.for_client >= RESET_REQUESTS_PER_CLIENT:
            raise TooManyRequests("too many password reset requests; try again later")
        connection.execute(RECORD_RESET_REQUEST, {"email_key": email_key, "client_key": client_key})
        connection.execute(
            ISSUE_RESET_LINK,
            {
                "email": normalized,
                "allowed": counts.for_email < RESET_REQUESTS_PER_EMAIL,
                "token_hash": _token_hash(token),
                "lifetime": RESET_TOKEN_LIFETIME,
                "link": reset_link(token),
                "minutes": int(RESET_TOKEN_LIFETIME.total_seconds() // 60),
            },
        )

    run_transaction(work)


def reset_password(token: str, new_password: str) -> None:
    """Set the password of the account the reset token belongs to and end its sessions;
    ``CredentialRefused`` (the same one) for a used, expired or unknown token."""
    _check_new_password(new_password, "newPassword")
    password_hash = hash_password(new_password)

    def work(connection: Connection) -> None:
        used = connection.execute(SPEND_RESET_LINK, {"token_hash": _token_hash(token)}).first()
        changed = (
            used
            and connection.execute(
                SET_NEW_HASH, {"id": used.user_id, "password_hash": password_hash, "by_reset": True}
            ).first()
        )
        if not changed:
            raise CredentialRefused(INVALID_RESET_TOKEN, field="token")

    run_transaction(work)


def change_password(
    staff: Staff, current_password: str, new_password: str, *, client: str = ""
) -> Session:
    """Set a signed-in staff member's password; a new session for this client, every other
    one ended. A wrong current password counts as a failed sign-in from ``client``
    (``CredentialRefused``, then ``TooManyRequests`` like the login)."""
    _check_new_password(new_password, "newPassword")
    normalized = login_email(staff.email)
    attempt = _reserve_attempt(normalized, client)
    account = run_transaction(
        lambda connection: connection.execute(ACCOUNT_FOR_CHANGE, {"id": staff.id}).first()
    )
    usable = account is not None and account.is_active and account.role in STAFF_ROLES
    if not _password_matches(current_password, account.password_hash if usable else None):
        if not usable:
            run_transaction(lambda c: c.execute(RELEASE_ATTEMPT, {"id": attempt}))
            raise Unauthorized("this account can no longer sign in")
        raise CredentialRefused(WRONG_CURRENT_PASSWORD, field="currentPassword")
    password_hash = hash_password(new_password)

    def work(connection: Connection) -> Any:
        connection.execute(RELEASE_ATTEMPT, {"id": attempt})
        return connection.execute(
            SET_NEW_HASH, {"id": staff.id, "password_hash": password_hash, "by_reset": False}
        ).first()

    changed = run_transaction(work)
    if changed is None:
        raise Unauthorized("this account can no longer sign in")
    member = StaffMember(changed.id, changed.email, changed.name, account.role, None)
    return Session(
        access_token=_access_token(member, changed.token_version),
        refresh_token=issue_refresh_token(
            refresh_secret(), user_id=member.id, token_version=changed.token_version
        ),
        user=member,
    )
