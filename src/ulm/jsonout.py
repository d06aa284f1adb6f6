"""Every JSON document ULM writes goes through `dumps`: strict JSON, never a bare NaN.

Python's `json.dumps` writes NaN and Infinity by default, which no other JSON reader accepts;
a non-finite number in ULM's output is a bug upstream, so it is named (its key path) and
refused rather than passed on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from ulm.errors import UlmError


class NonFiniteOutput(UlmError):
    """The output would contain NaN or an infinity at `key`."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"internal error: the output has a non-finite number at "
                         f"{key or '(top level)'}; nothing was written")


def dumps(obj: Any, *, indent: int | None = None, sort_keys: bool = False,
          compact: bool = False, default: Callable[[Any], Any] | None = None) -> str:
    """JSON text of `obj`, or `NonFiniteOutput` naming the first NaN/infinity in it.
    `compact`: no spaces (an event stream line); `default`: how to write other objects."""
    try:
        return json.dumps(obj, indent=indent, sort_keys=sort_keys, allow_nan=False,
                          separators=(",", ":") if compact else None, default=default)
    except ValueError:
        raise NonFiniteOutput(_first_non_finite(obj, "") or "") from None


def _first_non_finite(obj: Any, at: str) -> str | None:
    if isinstance(obj, float) and not math.isfinite(obj):
        return at
    if isinstance(obj, dict):
        items: Any = ((f"{at}.{k}" if at else str(k), v) for k, v in obj.items())
    elif isinstance(obj, list | tuple):
        items = ((f"{at}[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    for where, value in items:
        found = _first_non_finite(value, where)
        if found is not None:
            return found
    return None
