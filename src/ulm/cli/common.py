"""Shared CLI plumbing: one-line errors with exit status 2, output formats."""

from __future__ import annotations

import enum
import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from ulm.errors import UlmError
from ulm.redact import redact

P = ParamSpec("P")
R = TypeVar("R")

console = Console()
err_console = Console(stderr=True)


class Format(enum.StrEnum):
    table = "table"
    json = "json"


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turns a `UlmError` into `error: ...` on stderr and exit status 2 — never a traceback,
    never a credential."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except UlmError as exc:
            print(f"error: {redact(str(exc))}", file=sys.stderr)
            raise typer.Exit(2) from None

    return wrapper
