"""The local stack's Stripe test key, under the name the company's browser check uses.

The booking-site harness in ``../shared/realclient`` reads
``rft_tools.local_stripe.LOCAL_STRIPE_SECRET_KEY`` to pay with localstripe; this module keeps
that import working. The key lives in ``rft_tools.local.stripe``.
"""

from rft_tools.local.stripe import LOCAL_STRIPE_SECRET_KEY

__all__ = ["LOCAL_STRIPE_SECRET_KEY"]
