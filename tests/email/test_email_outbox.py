"""The email outbox against a real PostgreSQL and moto's SES (the local stack's): what
is queued is sent once, what is suppressed never, what fails is retried then given up;
and the templates with hostile names. Messages are read back as ``rft mail list`` does."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import text

from rft_common.db.postgres import run_transaction
from rft_common.email import outbox, templates
from rft_common.email.ses import SendFailed, build_message
from rft_common.email.suppression import handle_notification
from rft_tools.local.mail import LINK, parse, sent_mail

pytestmark = pytest.mark.usefixtures("db", "local_ses")

CHANGED = {"name": "Alex Admin", "changed_at": "2027-01-12T09:30:00+00:00", "by_reset": False}


def queue(*recipients: str, kind: str = "staff_password_changed") -> None:
    def work(connection) -> None:
        for number, recipient in enumerate(recipients):
            outbox.enqueue(
                connection,
                kind=kind,
                dedupe_key=f"{recipient}:{number}",
                recipient=recipient,
                payload=CHANGED,
            )

    run_transaction(work)


def statuses(db) -> dict[str, str]:
    with db.connect() as connection:
        found = connection.execute(text("SELECT recipient, status FROM email_outbox")).all()
    return dict(found)


def recipients_sent(local_ses: str) -> list[str]:
    return sorted(address for mail in sent_mail(local_ses) for address in mail.to)


def test_a_queued_message_is_sent_once_with_text_html_and_headers(db, local_ses):
    queue("alex@example.com")

    first = outbox.drain()
    second = outbox.drain()

    [mail] = sent_mail(local_ses, to="alex@example.com")
    assert (first.sent, second.sent) == (1, 0)
    assert mail.subject == "Your React Fast Training admin password was changed"
    assert mail.sender == "React Fast Training <bookings@reactfasttraining.co.uk>"
    assert mail.headers["Reply-To"] == "info@reactfasttraining.co.uk"
    assert "Tuesday 12 January 2027 at 9:30am" in mail.text
    assert "Tuesday 12 January 2027 at 9:30am" in mail.html
    assert "https://reactfasttraining.co.uk" in mail.links
    with db.connect() as connection:
        row = connection.execute(text("SELECT status, payload, sent_at FROM email_outbox")).one()
    assert (row.status, row.payload) == ("sent", None)


def test_a_rolled_back_transaction_queues_nothing(db, local_ses):
    def work(connection) -> None:
        outbox.enqueue(
            connection,
            kind="staff_password_changed",
            dedupe_key="1",
            recipient="a@example.com",
            payload=CHANGED,
        )
        raise RuntimeError("the event failed after queuing its email")

    with pytest.raises(RuntimeError):
        run_transaction(work)
    outbox.drain()

    assert statuses(db) == {}
    assert sent_mail(local_ses) == []


def test_the_same_event_queued_twice_is_one_message(db, local_ses):
    for _ in range(2):
        run_transaction(
            lambda connection: outbox.enqueue(
                connection,
                kind="staff_password_changed",
                dedupe_key="7:1",
                recipient="a@example.com",
                payload=CHANGED,
            )
        )
    outbox.drain()

    assert len(sent_mail(local_ses)) == 1


def bounce(address: str, bounce_type: str = "Permanent") -> dict:
    """An SES event as EventBridge delivers it from the configuration set."""
    return {
        "source": "aws.ses",
        "detail-type": "Email Bounced",
        "detail": {
            "eventType": "Bounce",
            "bounce": {
                "bounceType": bounce_type,
                "bouncedRecipients": [{"emailAddress": address}],
            },
            "mail": {"destination": [address]},
        },
    }


def test_a_permanent_bounce_suppresses_the_address_and_nothing_is_sent_to_it(db, local_ses):
    handle_notification(bounce("Gone@Example.com"))
    handle_notification(bounce("full@example.com", "Transient"))
    complaint = {
        "Message": '{"notificationType": "Complaint", "complaint": '
        '{"complainedRecipients": [{"emailAddress": "angry@example.com"}]}}'
    }
    handle_notification(complaint)  # the SNS shape
    queue("gone@example.com", "full@example.com", "angry@example.com")

    result = outbox.drain()

    assert (result.sent, result.suppressed) == (1, 2)
    assert recipients_sent(local_ses) == ["full@example.com"]
    assert statuses(db) == {
        "gone@example.com": "suppressed",
        "full@example.com": "sent",
        "angry@example.com": "suppressed",
    }


def test_a_sender_that_dies_mid_batch_leaves_the_rest_and_nothing_is_sent_twice(db, local_ses):
    addresses = [f"person{number}@example.com" for number in range(6)]
    queue(*addresses)
    sent_before_crash = []

    def crashing(kind, recipient, payload):
        if len(sent_before_crash) == 2:
            raise SystemExit("the Lambda ran out of time")
        sent_before_crash.append(recipient)
        return outbox.send_with_ses(kind, recipient, payload)

    with pytest.raises(SystemExit):
        outbox.drain(crashing)
    assert outbox.drain().sent == 0  # the claimed rest waits for its lease to end
    with db.begin() as connection:  # the lease ends
        connection.execute(text("UPDATE email_outbox SET next_attempt_at = now()"))
    after = outbox.drain()

    assert after.sent == 4
    assert recipients_sent(local_ses) == sorted(addresses)
    assert set(statuses(db).values()) == {"sent"}


def test_concurrent_senders_send_each_message_once(db, local_ses):
    addresses = [f"crowd{number}@example.com" for number in range(40)]
    queue(*addresses)
    barrier = threading.Barrier(4)

    def sender() -> None:
        barrier.wait()
        outbox.drain(limit=5)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert recipients_sent(local_ses) == sorted(addresses)


def test_failures_are_retried_with_backoff_then_given_up(db, local_ses):
    queue("flaky@example.com", "rejected@example.com")

    def failing(kind, recipient, payload):
        raise SendFailed(
            "MessageRejected" if recipient.startswith("rejected") else "Throttling",
            permanent=recipient.startswith("rejected"),
        )

    first = outbox.drain(failing)
    with db.connect() as connection:
        wait = connection.execute(
            text("SELECT next_attempt_at - now() FROM email_outbox WHERE recipient LIKE 'flaky%'")
        ).scalar_one()
    for _ in range(outbox.MAX_ATTEMPTS - 1):
        with db.begin() as connection:
            connection.execute(text("UPDATE email_outbox SET next_attempt_at = now()"))
        outbox.drain(failing)

    assert (first.failed, first.dead) == (1, 1)
    assert 50 < wait.total_seconds() <= 60
    with db.connect() as connection:
        rows = connection.execute(
            text("SELECT recipient, status, attempts, payload, last_error FROM email_outbox")
        ).all()
    assert {(r.recipient, r.status, r.attempts, r.payload, r.last_error) for r in rows} == {
        ("flaky@example.com", "dead", outbox.MAX_ATTEMPTS, None, "Throttling"),
        ("rejected@example.com", "dead", 1, None, "MessageRejected"),
    }
    assert sent_mail(local_ses) == []


HOSTILE = '<script>alert("x")</script>\r\nBcc: victim@example.com\r\n\r\n<b>'


def test_hostile_names_are_text_in_html_and_cannot_add_headers(local_ses):
    rendered = templates.render(
        "booking_confirmation",
        {
            "reference": "RFT-1-ABCD",
            "name": HOSTILE,
            "course": "Emergency First Aid\r\nBcc: victim@example.com",
            "starts_at": "2027-07-01T08:30:00+00:00",
            "ends_at": "2027-07-01T15:30:00+00:00",
            "venue": "<img src=x onerror=alert(1)>",
            "places": 2,
            "amount": "150.00",
            "reason": None,
        },
    )
    mail = parse(
        "x", build_message("a@example.com", rendered, kind="booking_confirmation").as_string()
    )

    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "<img" not in rendered.html
    assert "Bcc" not in mail.headers
    assert "\n" not in mail.subject and "\r" not in mail.subject
    assert mail.to == ["a@example.com"]
    assert "Thursday 1 July 2027" in mail.text  # London summer time: 9:30am
    assert "9:30am to 4:30pm" in mail.text
    assert "£150.00" in mail.html


def test_every_kind_has_an_example_that_renders_html_and_text_with_the_same_links():
    """The examples are what ``rft mail screenshots`` opens in Chromium (docs/emails/)."""
    from rft_tools.data.email_examples import EXAMPLES

    assert set(EXAMPLES) == set(templates.KINDS)
    for kind, example in EXAMPLES.items():
        rendered = templates.render(kind, example)
        name = example["name"]
        assert rendered.subject and name in rendered.text and name in rendered.html
        html_links = {link.replace("&amp;", "&") for link in LINK.findall(rendered.html)}
        assert set(LINK.findall(rendered.text)) <= html_links, kind


def test_rft_mail_list_prints_the_messages_newest_first(db, local_ses, capsys):
    from rft_tools.cli.main import main

    queue("first@example.com")
    outbox.drain()
    run_transaction(
        lambda connection: outbox.enqueue(
            connection,
            kind="staff_password_changed",
            dedupe_key="second",
            recipient="second@example.com",
            payload=CHANGED,
        )
    )
    outbox.drain()
    capsys.readouterr()

    assert main(["mail", "list", "--json", "--endpoint", local_ses]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert main(["mail", "list", "--to", "FIRST@example.com", "--endpoint", local_ses]) == 0
    printed = capsys.readouterr().out

    assert [mail["to"] for mail in listed] == [["second@example.com"], ["first@example.com"]]
    assert set(listed[0]) >= {"to", "from", "subject", "text", "html", "headers", "links"}
    assert "To: first@example.com" in printed and "second@example.com" not in printed


def test_the_sender_with_nothing_due_logs_and_publishes_nothing(lambda_context, capsys):
    import logging

    from rft_common.core.observability import logger
    from tests.conftest import load_function

    records: list[logging.LogRecord] = []
    collect = logging.Handler()
    collect.emit = records.append
    logging.getLogger(logger.name).addHandler(collect)
    try:
        result = load_function("email_sender").lambda_handler({}, lambda_context)
    finally:
        logging.getLogger(logger.name).removeHandler(collect)

    assert result == {"sent": 0, "failed": 0, "dead": 0, "suppressed": 0}
    assert records == []
    assert capsys.readouterr().out == ""  # no metrics document either


def test_a_paced_sender_run_stops_within_its_minute(db, local_ses, lambda_context, monkeypatch):
    from rft_common.core import settings
    from tests.conftest import load_function

    monkeypatch.setenv("SES_SEND_RATE", "4")  # batches of 20, 5 s each
    settings.get_settings.cache_clear()
    queue(*(f"paced{n}@example.com" for n in range(30)))
    function = load_function("email_sender", "paced")
    monkeypatch.setattr(function, "RUN_SECONDS", 1)

    result = function.lambda_handler({}, lambda_context)

    assert result["sent"] == 20  # one batch, then its time was up
    assert sorted(statuses(db).values()).count("pending") == 10
