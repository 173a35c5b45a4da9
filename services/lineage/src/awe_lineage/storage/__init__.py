"""Data access of the lineage service."""
