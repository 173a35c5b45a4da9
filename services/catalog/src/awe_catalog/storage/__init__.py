"""Data access: functions and stores that take a connection and never commit."""
