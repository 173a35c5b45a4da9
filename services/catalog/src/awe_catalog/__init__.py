"""AWE catalog service: every persistent object, queries, validity look-ups, users, changelog."""
