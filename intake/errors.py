"""Errors the gateway raises on purpose, each carrying a sentence a person can act on."""


class IntakeError(Exception):
    """Base of the gateway's own errors."""


class ConfigError(IntakeError):
    """A setting is missing or malformed; the message names the key."""


class ImportFileError(IntakeError):
    """An import file has problems; ``problems`` lists each with its line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the import file")
        self.problems = problems


class StorageUnavailable(IntakeError):
    """The database could not durably store something; the caller must answer 'try later'."""
