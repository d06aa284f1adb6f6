"""Loading TOML files into pydantic models with one-line errors that name file, key and line."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ulm.inputs import BadInput, read_bounded
from ulm.numbers import MAX_TOML_BYTES

M = TypeVar("M", bound=BaseModel)


def load_model(path: Path, model: type[M], what: str) -> M:
    """Reads `path` as TOML and validates it as `model`; every failure is a `BadInput` (a
    `ConfigError`)."""
    raw = read_bounded(path, MAX_TOML_BYTES, what)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(str(path), f"cannot read {what} file: not UTF-8 (byte {exc.start})",
                       kind="encoding") from None
    return parse_model(text, model, what, str(path))


def parse_model(text: str, model: type[M], what: str, source: str) -> M:
    if not text.strip():
        raise BadInput(source, f"{what} file is empty", kind="empty")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(source, f"not valid TOML: {exc}", kind="syntax") from None
    except RecursionError:
        # tomllib recurses once per nested array or inline table; real files nest 3 deep.
        raise BadInput(source, "not valid TOML: nested too deeply", kind="too_deep") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _describe(exc, text, source) from None


def _describe(exc: ValidationError, text: str, source: str) -> BadInput:
    """The first error, as `file: key (line N): what is wrong` (+ how many more)."""
    # A typo in a key shows up twice (unknown key + required key missing): name the typo.
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    # TOML's own dotted form (`hosts.0.uri`), as a TOML user writes keys.
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
    line = _find_line(text, [p for p in err["loc"] if isinstance(p, str)])
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "value_error":
        msg = msg.removeprefix("Value error, ")
    elif "input" in err and err["type"] not in ("missing",):
        msg = f"{msg}, got {_short(err['input'])}"
    more = len(exc.errors()) - 1
    tail = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    return BadInput(source, msg + tail, key, line, kind=err["type"])


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _find_line(text: str, keys: list[str]) -> int | None:
    """Best-effort line of a dotted key: its table header, then the key inside it."""
    if not keys:
        return None
    lines = text.splitlines()
    start, table = 0, keys[:-1]
    if table:
        header = re.compile(r"^\s*\[\[?\s*" + re.escape(".".join(table)) + r"\s*\]\]?\s*$")
        for i, line in enumerate(lines):
            if header.match(line):
                start = i + 1
                break
    key = re.compile(r"^\s*" + re.escape(keys[-1]) + r"\s*=")
    for i in range(start, len(lines)):
        if i > start and lines[i].lstrip().startswith("[") and table:
            break
        if key.match(lines[i]):
            return i + 1
    if not table:
        header = re.compile(r"^\s*\[\[?\s*" + re.escape(keys[-1]) + r"[\].]")
        for i, line in enumerate(lines):
            if header.match(line):
                return i + 1
    return None
