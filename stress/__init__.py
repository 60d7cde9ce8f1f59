"""``make stress``: minutes-long reliability scenarios, each reporting cases and failures."""
