"""numba, with a cache directory that works and never serves stale code: imported by every
compiled kernel instead of numba.

numba checks a cached function only against its own source file's time stamp, so code it
inlined from another file (a filter of `scan.py` inside `loops.place_many`) kept running from
the cache after that other file changed — and an in-place upgrade of ULM or numba could do the
same. So ULM keys the whole cache: the compiled code lives in `<base>/<key>`, where `key` hashes
every kernel source file (`KERNEL_DIRS`, and this file) and numba's version. Any change is a new,
empty directory; nothing compiled from other sources can be found there.

numba caches compiled code next to the source (`__pycache__`) or in `NUMBA_CACHE_DIR`; when the
install is read-only it falls back to a directory under HOME, and when that is not writable
either, every `@njit(cache=True)` raises RuntimeError at import — every scheduling command
died. So before numba is imported, ULM picks the base itself:

1. `NUMBA_CACHE_DIR` if the admin set it and it is writable;
2. the source tree (`ulm/__pycache__/numba`), if this process can write there (a normal
   install: `python -m ulm.warm` filled it);
3. `$XDG_CACHE_HOME/ulm/numba` (default `~/.cache/ulm/numba`), then a private directory under
   the system's temp dir — seeded with the compiled code a read-only install ships, so a user
   of a root-owned install does not compile for half a minute;
4. none: the kernels are compiled in memory, every process (slow, but it runs).

`NUMBA_CACHE_DIR` is then set to `<base>/<key>` (numba reads it once, at import).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: the package, and the directories of the modules with compiled kernels
PACKAGE = Path(os.path.abspath(__file__)).parent
KERNEL_DIRS = tuple(PACKAGE / d for d in ("scheduler", "sim"))
#: where a normal install keeps its compiled code (one subdirectory per key)
TREE_CACHE = PACKAGE / "__pycache__" / "numba"
_KEY_LEN = 16


def cache_key() -> str:
    """A hash of every kernel source file (path and content) and numba's version: what the
    compiled code was made from. Read from the files, not imported: numba must not be
    imported before `NUMBA_CACHE_DIR` is settled."""
    digest = hashlib.sha256()
    try:
        digest.update(importlib.metadata.version("numba").encode())
    except importlib.metadata.PackageNotFoundError:  # vendored numba: its files say enough
        digest.update(b"numba ?")
    files = [Path(os.path.abspath(__file__))]
    files += sorted(f for d in KERNEL_DIRS for f in d.rglob("*.py"))
    for f in files:
        digest.update(str(f.relative_to(PACKAGE)).encode() + b"\0")
        with contextlib.suppress(OSError):
            digest.update(f.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:_KEY_LEN]


KEY = cache_key()


def _writable(path: Path) -> bool:
    """Can this process create `path` (if need be) and a file in it? Tried, not guessed:
    permission bits say nothing about read-only mounts or root."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            return True
    except OSError:
        return False


def _user_cache() -> Path | None:
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "ulm" / "numba"
    try:
        return Path.home() / ".cache" / "ulm" / "numba"
    except RuntimeError:  # no HOME and no passwd entry
        return None


def _private_tmp() -> Path | None:
    """`<tmp>/ulm-numba-<uid>`, only if it is ours and nobody else can write to it: numba's
    cache is pickled code, so a directory another user controls must never be loaded."""
    path = Path(tempfile.gettempdir()) / f"ulm-numba-{os.getuid()}"
    with contextlib.suppress(FileExistsError, OSError):
        path.mkdir(mode=0o700)
    try:
        st = path.lstat()
    except OSError:
        return None
    private = (stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()
               and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))
    return path if private and _writable(path) else None


def _seed(cache: Path) -> None:
    """Copies the compiled code shipped in the (read-only) source tree for this key. numba
    names its subdirectories after the source directories' paths, which are the same."""
    shipped = TREE_CACHE / KEY
    if not shipped.is_dir():
        return
    with contextlib.suppress(OSError):  # a partial seed only means compiling more
        for f in shipped.rglob("*"):
            dest = cache / f.relative_to(shipped)
            if f.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
            elif f.suffix in (".nbi", ".nbc") and not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, dest)


def _is_key(name: str) -> bool:
    return len(name) == _KEY_LEN and all(c in "0123456789abcdef" for c in name)


def _prune(base: Path) -> None:
    """Removes the install's own caches of other keys (code it no longer has). Only in the
    source tree: a user's cache may serve other installs of other versions."""
    with contextlib.suppress(OSError):
        for d in base.iterdir():
            if d.is_dir() and d.name != KEY and _is_key(d.name):
                shutil.rmtree(d, ignore_errors=True)


def choose_cache() -> Path | None:
    """The cache directory numba will use, `<base>/<key>` (None: caching off); sets
    `NUMBA_CACHE_DIR` to it."""
    given = os.environ.get("NUMBA_CACHE_DIR")
    chosen: Path | None = None
    base = Path(given) if given else None
    if base is not None and _is_key(base.name):  # inherited from a ULM parent process
        base = base.parent
    if base is not None and _writable(base / KEY):
        chosen = base / KEY
    elif _writable(TREE_CACHE / KEY):
        _prune(TREE_CACHE)
        chosen = TREE_CACHE / KEY
    else:
        for fallback in (_user_cache(), _private_tmp()):
            if fallback is not None and _writable(fallback / KEY):
                chosen = fallback / KEY
                _seed(chosen)
                break
    if chosen is None:
        os.environ.pop("NUMBA_CACHE_DIR", None)
        return None
    os.environ["NUMBA_CACHE_DIR"] = str(chosen)
    return chosen


CACHE_DIR = choose_cache()

import numba as _numba  # noqa: E402  (after NUMBA_CACHE_DIR is settled: numba reads it once)

# numba may have been imported before this module (a test, a notebook): tell it directly.
_numba.config.CACHE_DIR = os.environ.get("NUMBA_CACHE_DIR", "")  # type: ignore[attr-defined]


class _Numba:
    """What the kernels use of numba, with `cache=True` dropped when there is no cache."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_numba, name)

    def njit(self, **options: Any) -> Callable[[F], F]:
        """`numba.njit(**options)`; the compiled function keeps its Python signature for mypy
        (numba has no type hints)."""
        if CACHE_DIR is None:
            options["cache"] = False
        decorate: Callable[[F], F] = _numba.njit(**options)
        return decorate


numba = _Numba()
