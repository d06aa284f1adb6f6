"""The compiled code's cache is keyed on every kernel source file and numba's version: an edit
to one file can never leave another file's compiled code running the old version of it.

The trap it closes: numba checks a cached function only against its own file, so after an
edit of `scan.py` alone, `loops.place_many` (which inlines scan's filter) ran the old filter
from the cache. The probe below is that shape in two small files, so that it compiles in a
second instead of the real kernels' minute.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

INNER = """from ulm.jit import numba


@numba.njit(cache=True)
def rule(x: float) -> float:
    return x * {factor}
"""

OUTER = """from ulm.jit import numba
from ulm.scheduler._probe_inner import rule


@numba.njit(cache=True)
def decide(x: float) -> float:
    return rule(x) + 1.0  # compiled with `rule` inside: this file's cache holds both
"""

RUN = ("import ulm.jit as j; from ulm.scheduler._probe_outer import decide; "
       "print(decide(10.0), j.CACHE_DIR)")


def _run(pkg: Path) -> tuple[str, Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "XDG_"))}
    env.update({"PYTHONPATH": str(pkg), "PYTHONDONTWRITEBYTECODE": "1"})
    out = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True,
                         cwd=pkg, env=env, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    value, cache = out.stdout.split()
    return value, Path(cache)


def test_an_edit_of_an_inlined_kernel_file_runs_the_new_code(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    shutil.copytree(ROOT / "src" / "ulm", pkg / "ulm",
                    ignore=shutil.ignore_patterns("__pycache__"))
    sched = pkg / "ulm" / "scheduler"
    inner, outer = sched / "_probe_inner.py", sched / "_probe_outer.py"
    inner.write_text(INNER.format(factor=2))
    outer.write_text(OUTER)

    first, old_cache = _run(pkg)
    assert first == "21.0"
    assert old_cache.is_relative_to(pkg / "ulm" / "__pycache__" / "numba")
    assert any(old_cache.rglob("*_probe_outer*.nbi"))  # `decide` really is cached
    again, same_cache = _run(pkg)
    assert (again, same_cache) == (first, old_cache)  # unchanged sources: the same cache

    inner.write_text(INNER.format(factor=3))  # only the inlined file changes
    stamp = outer.stat()
    os.utime(outer, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # outer untouched, as in the trap
    after, new_cache = _run(pkg)
    assert after == "31.0"  # the new rule ran inside `decide`, not the cached old one
    assert new_cache != old_cache
    assert not old_cache.exists()  # the install's cache of code it no longer has is gone
