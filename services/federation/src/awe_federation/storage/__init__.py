"""Data access of the federation service."""
