"""The edge where files and options come in: a problem with one of them is data (`BadInput`:
where and what), rendered to one line only when it is printed.

Also the two things every reader needs: reading a file without trusting its size, and names
that are safe to print.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field

from ulm.errors import ConfigError


class BadInput(ConfigError):
    """`source` (a file or an option) is wrong at `key` (a path such as `hosts[2].cpu`, or "")
    and `line` (or None): `problem` says what is wrong."""

    def __init__(self, source: str, problem: str, key: str = "", line: int | None = None,
                 *, kind: str = "invalid") -> None:
        self.source, self.problem, self.key, self.line = source, problem, key, line
        #: A machine-readable class of problem ("too_large", "not_finite", "duplicate", ...).
        self.kind = kind
        super().__init__(self.render())

    def render(self) -> str:
        if self.key:
            where = f" (line {self.line})" if self.line else ""
            return f"{self.source}: {self.key}{where}: {self.problem}"
        if self.line:
            return f"{self.source}:{self.line}: {self.problem}"
        return f"{self.source}: {self.problem}"


def key_path(loc: Sequence[int | str]) -> str:
    """pydantic's location as a path: ("hosts", 2, "cpu") -> `hosts[2].cpu`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":  # pydantic's marker for a dict key that failed
            out += " (the key)"
        else:
            out += f".{part}" if out else str(part)
    return out


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """The file's bytes, refusing a file larger than `limit` without reading more than that
    (a FIFO or /dev/zero has no honest size)."""
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise BadInput(str(path), f"{what} file not found", kind="missing") from None
    except OSError as exc:
        raise BadInput(str(path), f"cannot read {what} file: {exc.strerror or exc}",
                       kind="unreadable") from None
    if len(data) > limit:
        raise BadInput(str(path), f"{what} file is larger than {limit // 2**20} MiB",
                       kind="too_large")
    return data


def visible(text: str) -> str:
    """`text` with every non-printable character written as an escape (`\\x1b`): what reaches
    a terminal is what the file said, never a terminal command."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _printable(value: str) -> str:
    if not value.isprintable():
        bad = next(c for c in value if not c.isprintable())
        raise ValueError(f"must be printable, but contains {bad!r} (a control or formatting "
                         "character)")
    return value


#: A name (VM, host, power curve, label key): 1 to 255 printable characters.
Name = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_printable)]
#: A reference to a name, or "" for none; also free text such as a label value.
Text = Annotated[str, Field(max_length=255), AfterValidator(_printable)]
#: Longer free text (a description).
LongText = Annotated[str, Field(max_length=4096), AfterValidator(_printable)]
