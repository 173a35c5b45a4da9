"""Business logic of the lineage service."""
