"""Service requests: opening them and appending to them, the quarantine's release and discard, and
the refusal a staff action meets (with the statuses in which a request is still open). What staff
and the policy do to requests afterwards lives in ``intake.workflows``."""
