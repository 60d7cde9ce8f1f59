"""Issue 23, outcome 3: staff power ends at once.

A deactivated, demoted or re-passworded admin, or one who signed out everywhere, has no
power left with the access token they still hold; nobody changes their own active state.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType

import jwt
import pytest
from sqlalchemy import text

from rft_common.core.errors import Unauthorized
from rft_common.staff import service as staff
from rft_common.staff.tokens import Staff
from rft_common.users.profiles import UserUpdate, update_user
from tests.admin_helpers import TEST_ADMIN_SECRET, add_user, call, token_for
from tests.conftest import load_function
from tests.staff.test_admin_sign_in import call as auth_call

pytestmark = pytest.mark.usefixtures("db", "admin_secret", "export_bucket")

PASSWORD = "Correct-Horse-9-Battery"


@pytest.fixture(scope="module")
def users_function() -> ModuleType:
    return load_function("admin_users", "power")


@pytest.fixture(scope="module")
def auth_function() -> ModuleType:
    return load_function("admin_auth", "power")


def two_admins(db) -> tuple[tuple[int, str], tuple[int, str]]:
    """Two signed-in admins: (id, access token) each, tokens as the login issues them."""
    with db.begin() as connection:
        ids = [
            add_user(
                connection,
                email,
                name=email,
                role="admin",
                password_hash=staff.hash_password(PASSWORD, rounds=4),
            )
            for email in ("first.admin@example.com", "second.admin@example.com")
        ]
    return tuple(  # type: ignore[return-value]
        (user_id, staff.sign_in(email, PASSWORD).access_token)
        for user_id, email in zip(
            ids, ("first.admin@example.com", "second.admin@example.com"), strict=True
        )
    )


def as_admin(function, token: str, method: str = "GET", path: str = "/api/admin/users", **kw):
    return call(function, method, path, token=token, **kw)


def test_a_deactivated_admin_is_refused_at_their_next_request(db, users_function):
    (first, first_token), (second, second_token) = two_admins(db)
    assert as_admin(users_function, second_token)[0] == 200

    status, _, _ = as_admin(
        users_function,
        first_token,
        "PATCH",
        f"/api/admin/users/{second}",
        body={"is_active": False},
    )
    assert status == 200

    assert as_admin(users_function, second_token)[0] == 401
    reactivate = {"is_active": True}
    path = f"/api/admin/users/{second}"
    assert as_admin(users_function, second_token, "PATCH", path, body=reactivate)[0] == 401
    revenge = f"/api/admin/users/{first}"
    assert (
        as_admin(users_function, second_token, "PATCH", revenge, body={"is_active": False})[0]
        == 401
    )
    with db.connect() as connection:
        active = dict(connection.execute(text("SELECT id, is_active FROM users")).all())
    assert active == {first: True, second: False}


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE users SET role = 'instructor' WHERE id = :id",
        "UPDATE users SET password_hash = 'bcrypt$another' WHERE id = :id",
    ],
)
def test_a_role_or_password_change_ends_the_token_at_once(db, users_function, change):
    (admin_id, token), _ = two_admins(db)
    with db.begin() as connection:
        connection.execute(text(change), {"id": admin_id})

    assert as_admin(users_function, token)[0] == 401


def test_signing_out_everywhere_ends_every_token(db, users_function, auth_function):
    (_, token), _ = two_admins(db)
    other_device = staff.sign_in("first.admin@example.com", PASSWORD).access_token

    status, body, _ = auth_call(
        auth_function, "POST", "/api/admin/auth/logout-everywhere", token=token
    )

    assert (status, body["success"]) == (200, True)
    assert as_admin(users_function, token)[0] == 401
    assert as_admin(users_function, other_device)[0] == 401
    assert auth_call(auth_function, "GET", "/api/admin/auth/me", token=other_device)[0] == 401


def legacy_token(user_id: int) -> str:
    """The old login backend's access token: ``{id, email, role}``, no ``ver``."""
    now = int(time.time())
    claims = {"id": user_id, "email": "first.admin@example.com", "role": "admin"}
    return jwt.encode(
        claims | {"iss": "reactfasttraining.co.uk", "aud": "admin", "iat": now, "exp": now + 900},
        TEST_ADMIN_SECRET,
        algorithm="HS256",
    )


def test_the_old_logins_token_counts_as_version_0_and_ends_with_the_sessions(
    db, users_function, auth_function
):
    (admin_id, token), _ = two_admins(db)
    old_shape = legacy_token(admin_id)
    assert as_admin(users_function, old_shape)[0] == 200

    auth_call(auth_function, "POST", "/api/admin/auth/logout-everywhere", token=token)

    assert as_admin(users_function, old_shape)[0] == 401


def test_a_token_for_an_account_that_does_not_exist_is_refused(db, users_function):
    assert as_admin(users_function, token_for(user_id=123_456))[0] == 401


def test_nobody_changes_their_own_active_state(db, users_function):
    (admin_id, token), _ = two_admins(db)

    status, body, _ = as_admin(
        users_function,
        token,
        "PATCH",
        f"/api/admin/users/{admin_id}",
        body={"is_active": False},
    )

    assert status in (400, 422)
    assert "is_active" in str(body)


def _waiting_on_a_lock(db) -> bool:
    with db.connect() as connection:
        query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        return connection.execute(text(query)).scalar_one() > 0


def test_an_edit_waiting_on_the_admins_deactivation_is_refused_when_it_commits(db):
    """The gate admitted the admin; their deactivation commits while the edit waits for
    the row: the edit is refused and changes nothing."""
    _, (second, _) = two_admins(db)
    with db.begin() as connection:
        customer = add_user(connection, "sam@example.com", name="Sam Patel", city="Sheffield")
    with db.connect() as connection:
        acting = Staff(
            id=second,
            email="second.admin@example.com",
            role="admin",
            token_version=connection.execute(
                text("SELECT token_version FROM users WHERE id = :id"), {"id": second}
            ).scalar_one(),
        )

    deactivation = db.connect()
    transaction = deactivation.begin()
    deactivation.execute(text("UPDATE users SET is_active = false WHERE id = :id"), {"id": second})
    with ThreadPoolExecutor(1) as pool:
        edit = pool.submit(update_user, customer, UserUpdate(city="York"), actor=acting)
        deadline = time.monotonic() + 10
        while not _waiting_on_a_lock(db) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _waiting_on_a_lock(db)
        transaction.commit()
        deactivation.close()
        with pytest.raises(Unauthorized):
            edit.result(timeout=10)

    with db.connect() as connection:
        city = connection.execute(
            text("SELECT city FROM users WHERE id = :id"), {"id": customer}
        ).scalar_one()
        audits = connection.execute(text("SELECT count(*) FROM user_audit_log")).scalar_one()
    assert (city, audits) == ("Sheffield", 0)


def test_admins_deactivating_each_other_at_once_never_both_succeed(db):
    """Each acts while the other deactivates them: the edits serialise on the two rows
    (locked in id order, so no deadlock), and the second to run finds its admin gone."""
    with db.begin() as connection:
        ids = [
            add_user(connection, f"admin{n}@example.com", name=f"Admin {n}", role="admin")
            for n in (1, 2)
        ]
    admins = [
        Staff(id=user_id, email=f"admin{n}@example.com", role="admin")
        for n, user_id in zip((1, 2), ids, strict=True)
    ]
    start = threading.Barrier(2)

    def deactivate_the_other(me: int) -> str:
        start.wait()
        try:
            update_user(ids[1 - me], UserUpdate(is_active=False), actor=admins[me])
        except Unauthorized:
            return "refused"
        return "done"

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(deactivate_the_other, [0, 1]))

    assert outcomes == ["done", "refused"]
    with db.connect() as connection:
        active = connection.execute(
            text("SELECT count(*) FROM users WHERE is_active AND id = ANY(:ids)"), {"ids": ids}
        ).scalar_one()
    assert active == 1
