"""Consent records, per person and purpose, and the unsubscribe links that withdraw them."""
