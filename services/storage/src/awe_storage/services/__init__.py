"""Business logic of the storage service."""
