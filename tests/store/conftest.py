"""Store fixtures: every store test runs on real SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ulm.store import Store
from ulm.store.scratch import pg_bin, private_server, throwaway_database


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
    if pg_bin() is None:
        pytest.fail("PostgreSQL is not installed: run `bash scripts/setup.sh --dev`")
    with private_server() as url:
        yield url


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
    with throwaway_database(pg_url) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def new_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where no store is yet: a path in a directory that does not exist, or an empty database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/not/yet/ulm.db"
    return str(request.getfixturevalue("fresh_pg"))
