"""Data access of the compute service."""
