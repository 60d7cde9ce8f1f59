"""``make bench``: measurements of what users feel, reported, never asserted."""
