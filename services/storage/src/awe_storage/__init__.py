"""AWE storage service: files by unique name, checksummed, write-once, raw data sacred."""
