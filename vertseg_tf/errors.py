"""The project's own exception types: one line each, naming the file and the field."""

from __future__ import annotations

__all__ = ["ConfigError", "DataError", "VertsegError"]


class VertsegError(Exception):
    """Base class of every error vertseg-tf raises on purpose.

    The command-line interface prints `str(error)` as a single line and exits non-zero;
    anything else is a bug and shows a traceback.
    """


class DataError(VertsegError):
    """Bad input data: unreadable image, broken annotation, path outside the dataset.

    Args:
        file: the file the problem is in (path as the user gave it).
        field: the field inside that file (e.g. `images[3].vertebrae[1].contour`), or None.
        problem: what is wrong, in words.
    """

    def __init__(self, file, problem: str, field: str | None = None):
        self.file = str(file)
        self.field = field
        self.problem = problem
        parts = [self.file] + ([field] if field else []) + [problem]
        super().__init__(": ".join(parts))

    def __reduce__(self):
        # Rebuilt from its parts, so that it crosses a process boundary (parallel workers).
        return (type(self), (self.file, self.problem, self.field))


class ConfigError(VertsegError):
    """An invalid option, preset or configuration value."""
