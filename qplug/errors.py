"""Errors that qplug reports to users without a traceback."""

from __future__ import annotations


class QplugError(Exception):
    """Base class for every error qplug turns into a clear message instead of a traceback."""


class InputError(QplugError):
    """An input (file, stream, frame) could not be read; the run goes on without it.

    :param path: the file or source id the error is about.
    :param reason: one sentence a user can act on.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class UsageError(QplugError):
    """The user asked for something that cannot be done (unknown scorer, bad option value)."""


class PluginError(QplugError):
    """A plugin failed to load or registered something invalid."""


class Terminated(BaseException):
    """SIGTERM asked qplug to stop. A ``BaseException``, like ``KeyboardInterrupt``, so that code
    catching ``Exception`` (a plugin's error handling) cannot swallow it."""
