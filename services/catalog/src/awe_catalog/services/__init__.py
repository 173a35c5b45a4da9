"""Business logic: each service owns its transaction."""
