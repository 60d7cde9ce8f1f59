"""Every advisory lock the application takes, in one place.

PostgreSQL has one space of advisory-lock keys per database, shared by every feature:
two features that picked the same key would wait for each other for no reason. So each
lock is written here, once, as the statement that takes it, and a new one is added here
(tests/db/test_locks.py checks that no two share a key or a seed, and that no other
module takes one). All are transaction-scoped (``pg_advisory_xact_lock``): they end with
the transaction.
"""

LOCK_ERASURES = "SELECT pg_advisory_xact_lock(715015)"
"""Erasures (``privacy``) hold key 715015 exclusively and backfill batches shared
(``WAIT_FOR_ERASURES``), so a batch never reads a person's bookings while the person is
being erased."""

WAIT_FOR_ERASURES = "SELECT pg_advisory_xact_lock_shared(715015)"
"""A backfill batch's share of ``LOCK_ERASURES``."""

LOCK_CHECKOUT = "SELECT pg_advisory_xact_lock(hashtextextended(:key, 7011))"
"""One checkout's requests for a PaymentIntent (``checkout.intents``, seed 7011) run one
after the other, so a repeated request gets the intent the first one made instead of a
second one."""

LOCK_PAYMENT_INTENT = "SELECT pg_advisory_xact_lock(hashtextextended(:payment_intent_id, 11))"
"""Everything done for one PaymentIntent (``checkout.bookings`` and ``checkout.webhook``,
seed 11), booking it or refunding it, is ordered, whichever request or Stripe event
arrives first: each sees what the one before it committed."""

LOCK_STAFF_SIGN_IN = (
    "SELECT pg_advisory_xact_lock(hashtextextended('rft-admin-login:' || :email, 0))"
)
"""The sign-in attempts for one normalised email (``staff.service``, seed 0 with a text
prefix) are counted one at a time, so parallel guesses cannot all slip under the
failure limit."""

LOCK_RESET_LIMITS = """
    SELECT pg_advisory_xact_lock(hashtextextended('rft-password-reset:' || key, 0))
    FROM unnest(CAST(:keys AS text[])) AS key ORDER BY key
"""
"""The forgot-password limits of an email and of a client (``staff.service``, seed 0 with
a text prefix), taken in a fixed order, are counted one request at a time."""

LOCK_BACKFILL_ENQUEUE = "SELECT pg_advisory_xact_lock(7046121805337001)"
"""One backfill enqueue at a time (``rft backfill enqueue``)."""
