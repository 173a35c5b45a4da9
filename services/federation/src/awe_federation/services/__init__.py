"""Business logic of the federation service."""
