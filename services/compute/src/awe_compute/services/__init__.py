"""Business logic of the compute service."""
