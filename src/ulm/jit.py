"""numba, with a cache directory that works: imported by every compiled kernel instead of numba.

numba caches compiled code next to the source (`__pycache__`) or in `NUMBA_CACHE_DIR`; when the
install is read-only it falls back to a directory under HOME, and when that is not writable
either, every `@njit(cache=True)` raises RuntimeError at import — every scheduling command
died. So before numba is imported, ULM picks the cache itself:

1. `NUMBA_CACHE_DIR` if the admin set it and it is writable;
2. the source tree, if numba can write there (a normal install: `python -m ulm.warm` filled it);
3. `$XDG_CACHE_HOME/ulm/numba` (default `~/.cache/ulm/numba`), then a private directory under
   the system's temp dir — seeded with the compiled code a read-only install ships, so a user
   of a root-owned install does not compile for half a minute;
4. none: the kernels are compiled in memory, every process (slow, but it runs).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: the directories of the modules with compiled kernels (numba keys its cache by them)
KERNEL_DIRS = tuple(Path(os.path.abspath(__file__)).parent / d for d in ("scheduler", "sim"))


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
    """Copies the compiled code shipped in the (read-only) source tree to where numba's
    `NUMBA_CACHE_DIR` locator looks for it: `<dir>/<parent name>_<sha1 of the parent path>`."""
    for src in KERNEL_DIRS:
        shipped = src / "__pycache__"
        if not shipped.is_dir():
            continue
        dest = cache / f"{src.name}_{hashlib.sha1(str(src).encode()).hexdigest()}"
        with contextlib.suppress(OSError):  # a partial seed only means compiling more
            dest.mkdir(parents=True, exist_ok=True)
            for f in shipped.iterdir():
                if f.suffix in (".nbi", ".nbc") and not (dest / f.name).exists():
                    shutil.copy2(f, dest / f.name)


def choose_cache() -> Path | None:
    """The cache directory numba will use (None: caching off). Sets `NUMBA_CACHE_DIR` when it
    is not the source tree."""
    given = os.environ.get("NUMBA_CACHE_DIR")
    if given and _writable(Path(given)):
        return Path(given)
    if all(_writable(d / "__pycache__") for d in KERNEL_DIRS):
        os.environ.pop("NUMBA_CACHE_DIR", None)  # an unwritable one would be tried first
        return KERNEL_DIRS[0] / "__pycache__"
    for cache in (_user_cache(), _private_tmp()):
        if cache is not None and _writable(cache):
            _seed(cache)
            os.environ["NUMBA_CACHE_DIR"] = str(cache)
            return cache
    os.environ.pop("NUMBA_CACHE_DIR", None)
    return None


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
