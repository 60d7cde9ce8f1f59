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
