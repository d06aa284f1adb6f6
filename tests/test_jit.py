"""The compiled kernels' cache (ulm.jit): a read-only install and a HOME that is not there
still plan; with no writable directory at all the kernels compile in memory."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOBODY = 65534


@pytest.fixture
def readonly_install() -> Iterator[Path]:
    """A copy of the package (with the compiled code an install ships in `__pycache__`) that
    the test's process cannot write to: as root, the process runs as nobody."""
    base = Path(tempfile.mkdtemp(prefix="ulm-ro-"))
    try:
        shutil.copytree(ROOT / "src" / "ulm", base / "pkg" / "ulm")
        relocate_compiled(ROOT / "src" / "ulm", base / "pkg" / "ulm")
        tmp = base / "tmp"  # the process's TMPDIR: writable, but fresh for every test
        tmp.mkdir(mode=0o777)
        tmp.chmod(0o777)
        base.chmod(0o755)
        for p in (base / "pkg").rglob("*"):
            p.chmod(0o555 if p.is_dir() else 0o444)
        yield base
    finally:
        for p in (base / "pkg").rglob("*"):
            if p.is_dir():
                p.chmod(0o755)
        shutil.rmtree(base)


def relocate_compiled(src: Path, dst: Path) -> None:
    """The compiled code copied with the package, renamed as numba names it for the copy.
    numba files a source directory's code under a hash of its absolute path, so a copy at
    another path finds none of it and compiles every kernel again, as nobody (minutes on a
    loaded machine); an install warmed where it lies (`python -m ulm.warm`) ships the names
    of its own paths, which this makes the copy's."""
    from numba.core.caching import _CacheLocator

    from ulm.jit import KERNEL_DIRS, PACKAGE

    for kernels in KERNEL_DIRS:
        rel = kernels.relative_to(PACKAGE)
        old, new = (_CacheLocator.get_suitable_cache_subpath(str(root / rel / "any.py"))
                    for root in (src, dst))
        for key in (dst / "__pycache__" / "numba").glob("*"):
            if (key / old).is_dir():
                (key / old).rename(key / new)


def run_as_user(base: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("NUMBA_", "XDG_"))}
    environ.update({"PYTHONPATH": str(base / "pkg"), "HOME": "/nonexistent",
                    "TMPDIR": str(base / "tmp"), "PYTHONDONTWRITEBYTECODE": "1",
                    "COLUMNS": "200", **env})
    cmd = [sys.executable, "-c", code]
    if os.geteuid() == 0:  # root writes anywhere: be an ordinary user, as on a real machine
        cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=environ,
                          timeout=600)


def test_plan_runs_from_a_read_only_install_without_a_home(readonly_install: Path) -> None:
    base = readonly_install
    probe = run_as_user(base, "import os, ulm; print(os.access(ulm.__file__, os.W_OK))")
    assert probe.stdout.split() == ["False"], probe.stderr  # the copy, and not writable
    code = ("import sys, ulm.jit, ulm.cli; print('cache', ulm.jit.CACHE_DIR, ulm.__file__); "
            "sys.argv = ['ulm', 'plan', '--snapshot', 'examples/snapshots/hot-host.json', "
            "'--policy', 'seed']; ulm.cli.main()")
    out = run_as_user(base, code)
    assert out.returncode == 0, out.stderr
    assert "RuntimeError" not in out.stderr
    first = out.stdout.splitlines()[0].split()
    uid = NOBODY if os.geteuid() == 0 else os.geteuid()
    cache = Path(first[1])
    assert cache.parent == base / "tmp" / f"ulm-numba-{uid}"  # private, under TMPDIR
    assert len(cache.name) == 16  # keyed on the sources and numba's version
    assert first[2].startswith(str(base / "pkg"))
    assert "overloaded hosts 1 -> 0" in out.stdout  # the same plan as from the source tree
    assert stat.S_IMODE(cache.parent.stat().st_mode) == 0o700
    assert any(cache.rglob("*.nbi"))  # seeded from the install's compiled code


def test_without_any_writable_directory_the_kernels_compile_in_memory(
        readonly_install: Path) -> None:
    # tempfile falls back to /tmp, which anyone may write: point it at nothing instead
    code = ("import tempfile; tempfile.tempdir = '/nonexistent'\n"
            "import ulm.jit as j\n"
            "@j.numba.njit(cache=True)\n"
            "def twice(x):\n    return 2 * x\n"
            "print(j.CACHE_DIR, twice(21))")
    out = run_as_user(readonly_install, code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["None", "42"]


def test_a_writable_numba_cache_dir_of_the_admin_is_kept(tmp_path: Path) -> None:
    code = "import ulm.jit as j; print(j.CACHE_DIR)"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "nc")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120)
    cache = Path(out.stdout.strip())
    assert cache.parent == tmp_path / "nc", out.stderr  # under it, keyed on the sources
    assert cache.is_dir()
