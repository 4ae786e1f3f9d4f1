"""Service requests: opening and appending to them, what staff do to them, and the quarantine."""
