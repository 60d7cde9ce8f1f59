"""Every advisory-lock key the application takes, in one place.

PostgreSQL has one space of advisory-lock keys per database, shared by every feature:
two features that picked the same key would wait for each other for no reason. Each
key (or, for keys derived from text with ``hashtextextended(text, seed)``, each seed
or text prefix) is therefore defined here, once, and a new one is added here. All are
taken transaction-scoped (``pg_advisory_xact_lock``), so they end with the transaction.
"""

ERASURE_LOCK = 715_015
"""Advisory lock key: erasures (``privacy``) hold it exclusively, backfill batches shared,
so a batch never reads a person's bookings while the person is being erased."""

CHECKOUT_LOCK_NAMESPACE = 7011
"""Seed of ``hashtextextended(checkout key, seed)`` (``checkout.intents``): one checkout's
requests for a PaymentIntent run one after the other, so a repeated request gets the
intent the first one made instead of a second one."""

PAYMENT_INTENT_LOCK_NAMESPACE = 11
"""Seed of ``hashtextextended(PaymentIntent id, seed)`` (``checkout.bookings``): everything
done for one PaymentIntent (booking it, refunding it) is ordered, whichever request or
Stripe event arrives first."""

STAFF_SIGN_IN_LOCK_PREFIX = "rft-admin-login:"
"""Prefix of the text hashed (seed 0) with a normalised email (``staff.service``): the
sign-in attempts for one email are counted one at a time, so parallel guesses cannot
all slip under the failure limit."""
