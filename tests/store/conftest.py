"""Store fixtures: every store test runs on real SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ulm.store import Store


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A private PostgreSQL cluster on a unix socket (no TCP at all), for the session."""
    if os.environ.get("ULM_TEST_PG_URL"):
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        if worker is None:
            yield os.environ["ULM_TEST_PG_URL"]
        else:  # `store` empties its tables after each test: one database per xdist worker
            yield from _worker_database(os.environ["ULM_TEST_PG_URL"], worker)
        return
    if os.environ.get("ULM_SKIP_PG") == "1":
        pytest.skip("ULM_SKIP_PG=1")
    bindir = _pg_bin()
    if bindir is None:
        pytest.fail("PostgreSQL is not installed: run `bash scripts/setup.sh --dev`")
    user = pwd.getpwnam("postgres")
    base = Path(tempfile.mkdtemp(prefix="ulm-pg-"))
    os.chown(base, user.pw_uid, user.pw_gid)
    data, sock = base / "data", base

    def as_pg(*argv: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True,
                       capture_output=True, timeout=120)

    as_pg(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    as_pg(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-o",
          f"-k {sock} -c listen_addresses='' -c fsync=off", "start")
    try:
        as_pg(str(bindir / "createdb"), "-h", str(sock), "ulmtest")
        yield f"postgresql+psycopg://postgres@/ulmtest?host={sock}"
    finally:
        as_pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop")
        shutil.rmtree(base, ignore_errors=True)


def _worker_database(url: str, worker: str) -> Iterator[str]:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    name = f"{make_url(url).database}_{worker}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = Store.open(f"sqlite:///{tmp_path}/ulm.db", mode="create")
    else:
        url = request.getfixturevalue("pg_url")
        s = Store.open(url, mode="create")
    try:
        yield s
    finally:
        if request.param == "postgresql":  # one database for the session: start clean
            from ulm.store.schema import metadata
            with s.engine.begin() as c:
                for table in reversed(metadata.sorted_tables):
                    c.execute(table.delete())
        s.close()
        time.sleep(0)


@pytest.fixture
def fresh_pg(pg_url: str) -> Iterator[str]:
    """A new, empty database on the session's PostgreSQL server, dropped afterwards."""
    from uuid import uuid4

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    name = f"ulm_{uuid4().hex[:10]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def new_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where no store is yet: a path in a directory that does not exist, or an empty database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/not/yet/ulm.db"
    return str(request.getfixturevalue("fresh_pg"))
