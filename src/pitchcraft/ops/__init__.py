"""What operators run: backup and restore, the legacy import, doctor. Only the CLI imports
this package; the web edge never does."""
