"""Staff passwords (/api/admin/auth/change-password, forgot-password, reset-password) in
the shapes the admin app's ``admin-auth.service.ts`` sends, end to end: the admin_auth
handler, a real PostgreSQL, the outbox drained into moto's SES, and the reset link read
from the email the way ``rft mail list`` reads it."""

from __future__ import annotations

import hashlib
import statistics
import time
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import text

from rft_common.email import outbox
from rft_common.staff import service as staff
from rft_tools.local.mail import sent_mail
from tests.admin_helpers import add_user
from tests.conftest import load_function
from tests.staff.test_admin_sign_in import (
    EMAIL,
    FAST_ROUNDS,
    PASSWORD,
    call,
    login,
    set_cookie,
)

pytestmark = pytest.mark.usefixtures("admin_secret", "local_ses")

NEW_PASSWORD = "Staple-7-Battery-Horse"


@pytest.fixture(scope="module")
def auth_function():
    return load_function("admin_auth", "passwords")


@pytest.fixture
def admin_id(db) -> int:
    with db.begin() as connection:
        return add_user(
            connection,
            EMAIL,
            name="Alex Admin",
            role="admin",
            password_hash=staff.hash_password(PASSWORD, rounds=FAST_ROUNDS),
        )


def forgot(function, email: str = EMAIL):
    return call(function, "POST", "/api/admin/auth/forgot-password", body={"email": email})


def reset(function, token: str, password: str = NEW_PASSWORD):
    body = {"token": token, "newPassword": password}
    return call(function, "POST", "/api/admin/auth/reset-password", body=body)


def refresh(function, cookie: str) -> int:
    return call(function, "POST", "/api/admin/auth/refresh", body={}, cookie=cookie)[0]


def emailed_token(local_ses: str) -> str:
    outbox.drain()
    [mail] = [m for m in sent_mail(local_ses, to=EMAIL) if "Reset" in m.subject][:1]
    [link] = [link for link in mail.links if "reset-password" in link]
    assert link.startswith("https://reactfasttraining.co.uk/admin/reset-password?token=")
    return parse_qs(urlparse(link).query)["token"][0]


def test_forgot_then_the_emailed_link_then_reset_then_sign_in(
    db, auth_function, admin_id, local_ses
):
    old_session = set_cookie(login(auth_function)[2])["value"]

    status, body, _ = forgot(auth_function, " Alex.Admin@ReactFastTraining.co.uk ")
    token = emailed_token(local_ses)
    reset_status, reset_body, _ = reset(auth_function, token)
    outbox.drain()

    assert status == 200 and body["success"] is True
    assert (reset_status, reset_body["success"]) == (200, True)
    assert login(auth_function)[0] == 401  # the old password
    assert login(auth_function, password=NEW_PASSWORD)[0] == 200
    assert refresh(auth_function, old_session) == 401  # sessions from before the reset end
    assert reset(auth_function, token, "Another-Password-1")[0] == 400  # single use
    changed = [m for m in sent_mail(local_ses, to=EMAIL) if "was changed" in m.subject]
    assert len(changed) == 1 and "with a reset link" in changed[0].text
    with db.connect() as connection:
        stored = connection.execute(text("SELECT token_hash FROM staff_password_resets")).all()
    assert [bytes(row.token_hash) for row in stored] == [hashlib.sha256(token.encode()).digest()]


def test_a_used_expired_or_unknown_token_gets_the_same_400(db, auth_function, admin_id, local_ses):
    forgot(auth_function)
    token = emailed_token(local_ses)
    with db.begin() as connection:
        connection.execute(text("UPDATE staff_password_resets SET expires_at = now()"))

    expired = reset(auth_function, token)
    unknown = reset(auth_function, "not-a-token")
    short = reset(auth_function, "not-a-token", "short")

    assert expired[:2] == unknown[:2]
    assert expired[0] == 400 and expired[1]["errors"][0]["field"] == "token"
    assert short[0] == 422 and short[1]["errors"][0]["field"] == "newPassword"
    assert login(auth_function)[0] == 200  # the password did not change


def test_forgot_answers_alike_for_staff_customers_and_strangers(
    db, auth_function, admin_id, local_ses
):
    with db.begin() as connection:
        add_user(connection, "customer@example.com", name="Cus Tomer")
    emails = [EMAIL, "customer@example.com", "nobody@example.com"]
    answers = {email: forgot(auth_function, email)[:2] for email in emails}
    timings: dict[str, list[float]] = {email: [] for email in emails}
    for _ in range(2):
        for email in emails:
            with db.begin() as connection:  # under the per-email limit each round
                connection.execute(text("DELETE FROM staff_password_reset_requests"))
            started = time.perf_counter()
            forgot(auth_function, email)
            timings[email].append(time.perf_counter() - started)
    outbox.drain()

    assert answers[EMAIL] == answers["customer@example.com"] == answers["nobody@example.com"]
    assert answers[EMAIL][0] == 200
    medians = [statistics.median(values) for values in timings.values()]
    assert max(medians) - min(medians) < 0.05  # no bcrypt, no SES: database work alike
    assert {address for mail in sent_mail(local_ses) for address in mail.to} == {EMAIL}


def test_forgot_is_limited_per_email_silently_and_per_client_with_429(
    db, auth_function, admin_id, local_ses
):
    answers = [forgot(auth_function)[:2] for _ in range(staff.RESET_REQUESTS_PER_EMAIL + 2)]
    outbox.drain()
    others = [
        forgot(auth_function, f"someone{n}@example.com")[0]
        for n in range(staff.RESET_REQUESTS_PER_CLIENT - len(answers) + 1)
    ]

    assert all(answer == answers[0] for answer in answers)
    assert len(sent_mail(local_ses, to=EMAIL)) == staff.RESET_REQUESTS_PER_EMAIL
    assert set(others[:-1]) == {200}
    assert others[-1] == 429


def test_change_password_keeps_this_session_and_ends_the_others(
    db, auth_function, admin_id, local_ses
):
    signed_in = login(auth_function)
    other_session = set_cookie(login(auth_function)[2])["value"]
    token = signed_in[1]["accessToken"]
    change = "/api/admin/auth/change-password"

    wrong = call(
        auth_function,
        "POST",
        change,
        token=token,
        body={"currentPassword": "not-it", "newPassword": NEW_PASSWORD},
    )
    changed = call(
        auth_function,
        "POST",
        change,
        token=token,
        body={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD},
    )
    outbox.drain()

    assert wrong[0] == 400 and wrong[1]["errors"][0]["field"] == "currentPassword"
    assert changed[0] == 200 and changed[1]["accessToken"]
    assert refresh(auth_function, set_cookie(changed[2])["value"]) == 200  # this session
    assert refresh(auth_function, set_cookie(signed_in[2])["value"]) == 401
    assert refresh(auth_function, other_session) == 401
    assert login(auth_function, password=NEW_PASSWORD)[0] == 200
    [mail] = sent_mail(local_ses, to=EMAIL)
    assert mail.subject == "Your React Fast Training admin password was changed"
    assert "while signed in" in mail.text


def test_wrong_current_passwords_count_as_failed_sign_ins(db, auth_function, admin_id):
    token = login(auth_function)[1]["accessToken"]
    body = {"currentPassword": "not-it", "newPassword": NEW_PASSWORD}
    statuses = [
        call(auth_function, "POST", "/api/admin/auth/change-password", token=token, body=body)[0]
        for _ in range(staff.MAX_FAILURES + 1)
    ]

    assert statuses == [400] * staff.MAX_FAILURES + [429]
    assert login(auth_function)[0] == 429


def test_change_password_needs_a_bearer_token(auth_function, admin_id):
    body = {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}
    assert call(auth_function, "POST", "/api/admin/auth/change-password", body=body)[0] == 401
