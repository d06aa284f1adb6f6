"""Throwaway PostgreSQL: a private server and fresh databases that are dropped afterwards.

For the store's tests (every store test runs on PostgreSQL too) and the benchmarks that
measure the store at scale, never for a deployment. The private server is a cluster of its
own in a temporary directory, run as the `postgres` user, on a unix socket only (no TCP at
all), with fsync off: it holds nothing worth keeping.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL's program directory (Debian's layout), if any."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@contextmanager
def private_server(database: str = "ulmtest") -> Iterator[str]:
    """A new PostgreSQL cluster with one empty `database`, as a URL; stopped and removed
    afterwards. Raises RuntimeError when PostgreSQL is not installed."""
    bindir = pg_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed: run `bash scripts/setup.sh --dev`")
    user = pwd.getpwnam("postgres")
    base = Path(tempfile.mkdtemp(prefix="ulm-pg-"))
    os.chown(base, user.pw_uid, user.pw_gid)
    data, sock = base / "data", base

    def as_pg(*argv: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True,
                       capture_output=True, timeout=120)

    try:
        as_pg(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
        as_pg(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-o",
              f"-k {sock} -c listen_addresses='' -c fsync=off", "start")
        try:
            as_pg(str(bindir / "createdb"), "-h", str(sock), database)
            yield f"postgresql+psycopg://postgres@/{database}?host={sock}"
        finally:
            as_pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def throwaway_database(url: str, prefix: str = "ulm") -> Iterator[str]:
    """A new, empty database on the PostgreSQL server `url` names, as a URL (its password
    kept), dropped afterwards with whatever is still connected to it."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as c:
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
