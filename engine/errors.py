class EngineError(Exception):
    """Base for engine failures; ``str(error)`` is a sentence shown to the creator."""


class InputRejected(EngineError):
    """The creator's input breaks a rule; the message says what to change.

    ``field`` names the form field the problem belongs to (e.g. ``"source"``,
    ``"script"``, ``"audio"``) so the web layer can show it next to that field.
    """

    def __init__(self, message: str, *, field: str = "", code: str = ""):
        super().__init__(message)
        self.field = field
        self.code = code


class Cancelled(EngineError):
    """The caller asked the engine to stop; partial output has been removed."""
