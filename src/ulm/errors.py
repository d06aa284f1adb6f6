"""Errors a user can act on. The CLI prints them as one line and exits 2, never a traceback."""

from __future__ import annotations


class UlmError(Exception):
    """A problem with the user's input or environment, already phrased for the user."""


class ConfigError(UlmError):
    """A configuration or policy file is wrong: the message names the file, the key and why."""
