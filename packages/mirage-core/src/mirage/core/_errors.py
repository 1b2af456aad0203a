"""Errors of the mirage tool: each one is a paragraph for a person, never a traceback."""

from __future__ import annotations

__all__ = ["ConfigError", "MirageError", "RegistrationError", "ResolutionError"]


class MirageError(Exception):
    """An error the ``mirage`` tool reports as one paragraph and a non-zero exit.

    ``where`` is the place at fault (``config.py:12``, a key, a device), ``hint`` what
    to do about it.
    """

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text = f"{text}\n  {self.hint}"
        return text


class ConfigError(MirageError):
    """``config.py`` could not be read, or a key value given to ``configure`` is bad."""


class ResolutionError(MirageError):
    """The device graph cannot be resolved for this target and these keys."""


class RegistrationError(MirageError):
    """A plugin registered something invalid; the message names the plugin."""
