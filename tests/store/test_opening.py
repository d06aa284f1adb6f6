"""Opening a store: ULM creates or upgrades only what is missing, empty or its own, reads
read-only, and leaves anything else exactly as it was (real SQLite files, real PostgreSQL)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, inspect
from sqlalchemy.exc import DBAPIError

from tests.store.test_store import collection
from ulm.store import Store
from ulm.store.opening import MIGRATIONS, Found, StoreError, head

MODES = ("read", "write", "create")


def fingerprint(path: Path) -> tuple[str, list[str]]:
    """The file's bytes and its directory's names: a -wal or -shm left behind shows."""
    return hashlib.sha256(path.read_bytes()).hexdigest(), sorted(p.name for p in
                                                                 path.parent.iterdir())


def sqlite_app(path: Path, tables: str = "hosts") -> Path:
    """Another application's SQLite database (rollback journal, as SQLite makes them)."""
    c = sqlite3.connect(path)
    for name in tables.split(","):
        c.execute(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, fqdn TEXT)")
        c.execute(f"INSERT INTO {name} (fqdn) VALUES ('db1.example.org')")
    c.commit()
    c.close()
    return path


def pg_tables(url: str) -> dict[str, list[str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            insp = inspect(c)
            return {t: sorted(col["name"] for col in insp.get_columns(t))
                    for t in insp.get_table_names()}
    finally:
        engine.dispose()


def at_revision(url: str, rev: str) -> None:
    """A ULM store as an older ULM left it."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    engine = create_engine(url)
    with engine.begin() as c:
        cfg.attributes["connection"] = c
        command.upgrade(cfg, rev)
    engine.dispose()


def refused(url: str, mode: str) -> StoreError:
    with pytest.raises(StoreError) as info:
        Store.open(url, mode=mode)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    return info.value


# -- missing and empty ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["read", "write"])
def test_reading_or_writing_a_missing_store_creates_nothing(new_url: str, mode: str,
                                                            tmp_path: Path) -> None:
    err = refused(new_url, mode)
    assert err.found in (Found.MISSING, Found.EMPTY)
    assert "no store at" in str(err) and "run `ulm run` or `ulm store init` first" in str(err)
    if new_url.startswith("sqlite"):
        assert not (tmp_path / "not").exists()  # not even the directory
    else:
        assert pg_tables(new_url) == {}


def test_create_makes_the_store_and_read_then_opens_it_read_only(new_url: str) -> None:
    made = Store.open(new_url, mode="create")
    assert made.found is not None and made.found.found in (Found.MISSING, Found.EMPTY)
    made.add_collection(collection(100.0, {"a": 0.2}, {"a": "h1"}))
    made.close()
    reader = Store.open(new_url, mode="read")
    assert reader.found is not None and reader.found.revision == head()
    assert reader.snapshot(100.0, 4, 25.0).host_names == ("h1", "h2")
    with pytest.raises(DBAPIError) as info:  # the connection itself refuses to write
        reader.book("h1", 1.0, 2.0, False, "")
    reader.close()
    orig = info.value.orig
    if new_url.startswith("sqlite"):
        assert isinstance(orig, sqlite3.OperationalError)
        assert orig.sqlite_errorcode & 0xFF == sqlite3.SQLITE_READONLY
    else:
        import psycopg
        assert isinstance(orig, psycopg.errors.ReadOnlySqlTransaction)


def test_an_empty_sqlite_file_may_become_a_store(tmp_path: Path) -> None:
    (tmp_path / "ulm.db").touch()
    url = f"sqlite:///{tmp_path}/ulm.db"
    assert refused(url, "read").found is Found.EMPTY
    Store.open(url, mode="create").close()
    assert Store.open(url, mode="read").found.revision == head()  # type: ignore[union-attr]


def test_reading_leaves_the_store_file_unchanged(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ulm.db"
    s = Store.open(url, mode="create")
    s.add_collection(collection(100.0, {"a": 0.2}, {"a": "h1"}))
    s.close()
    before = hashlib.sha256((tmp_path / "ulm.db").read_bytes()).hexdigest()
    r = Store.open(url, mode="read")
    r.snapshot(100.0, 4, 25.0)
    r.plans()
    r.bookings()
    r.close()
    assert hashlib.sha256((tmp_path / "ulm.db").read_bytes()).hexdigest() == before


# -- not ULM's ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["own hosts table", "other tables", "other alembic",
                                  "not a database", "directory"])
def test_what_is_not_ulms_is_refused_and_left_byte_identical(tmp_path: Path, kind: str,
                                                             mode: str) -> None:
    path = tmp_path / "app.db"
    if kind == "own hosts table":
        sqlite_app(path)
    elif kind == "other tables":
        sqlite_app(path, "users,orders")
    elif kind == "other alembic":
        sqlite_app(path, "users")
        c = sqlite3.connect(path)
        c.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        c.execute("INSERT INTO alembic_version VALUES ('ae1027a6acf')")
        c.commit()
        c.close()
    elif kind == "not a database":
        path.write_text("[server]\nport = 8080\n" * 50)
    else:
        path.mkdir()
        (path / "keep").write_text("x")
    witness = path / "keep" if kind == "directory" else path
    before = fingerprint(witness)
    err = refused(f"sqlite:///{path}", mode)
    assert err.found is Found.FOREIGN
    assert f"{path} is not a ULM store" in str(err) and "leaves it untouched" in str(err)
    assert fingerprint(witness) == before  # not a byte, and no -wal / -shm next to it
    if kind not in ("not a database", "directory"):
        assert path.read_bytes()[18] == 1  # still a rollback-journal database, not WAL


def test_another_apps_wal_database_gets_no_wal_files(tmp_path: Path) -> None:
    path = sqlite_app(tmp_path / "app.db")
    c = sqlite3.connect(path)
    c.execute("PRAGMA journal_mode=WAL")
    c.close()  # the last connection checkpoints and removes -wal and -shm
    before = fingerprint(path)
    for mode in MODES:
        refused(f"sqlite:///{path}", mode)
    assert fingerprint(path) == before


@pytest.mark.parametrize("mode", MODES)
def test_another_apps_postgresql_database_is_refused_untouched(fresh_pg: str,
                                                               mode: str) -> None:
    engine = create_engine(fresh_pg)
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE hosts (id serial PRIMARY KEY, fqdn text)")
        c.exec_driver_sql("INSERT INTO hosts (fqdn) VALUES ('db1')")
    engine.dispose()
    before = pg_tables(fresh_pg)
    err = refused(fresh_pg, mode)
    assert err.found is Found.FOREIGN and "tables ULM did not make: hosts" in str(err)
    assert pg_tables(fresh_pg) == before  # no alembic_version, no ULM table


# -- revisions --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["read", "write"])
def test_an_older_store_asks_for_an_upgrade_and_is_left_as_it_is(new_url: str,
                                                                 mode: str) -> None:
    if new_url.startswith("sqlite"):
        Path(new_url.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    at_revision(new_url, "0002")
    err = refused(new_url, mode)
    assert "is at revision 0002" in str(err) and "run `ulm store upgrade`" in str(err)
    up = Store.open(new_url, mode="create")  # the daemon and `ulm store upgrade` may
    assert up.found is not None and up.found.revision == "0002"
    up.close()
    assert Store.open(new_url, mode="read").found.revision == head()  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", MODES)
def test_a_newer_ulms_store_says_upgrade_ulm(new_url: str, mode: str) -> None:
    Store.open(new_url, mode="create").close()
    engine = create_engine(new_url)
    newer = f"{int(head()) + 1:04d}"  # one past this ULM's newest revision
    with engine.begin() as c:
        c.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{newer}'")
    engine.dispose()
    err = refused(new_url, mode)
    assert err.found is Found.NEWER
    assert f"this store was written by a newer ULM (revision {newer}); upgrade ULM" in str(err)
    assert "Can't locate revision" not in str(err)


# -- damaged, in memory, no directory ----------------------------------------------------------


def real_store(path: Path, rows: int = 300) -> None:
    s = Store.open(f"sqlite:///{path}", mode="create")
    for k in range(rows):
        s.add_collection(collection(100.0 + k, {"a": 0.2, "b": 0.4}, {"a": "h1", "b": "h2"}))
    s.close()


def garbage(path: Path, offset: int, size: int) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(bytes((i * 151 + 7) % 256 for i in range(size)))


def samples_page(path: Path) -> int:
    """The number of a leaf page of the samples table (dbstat: SQLite's page map)."""
    c = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    (page,) = c.execute("SELECT pageno FROM dbstat WHERE name = 'samples' AND pagetype = 'leaf'"
                        " ORDER BY pageno LIMIT 1 OFFSET 3").fetchone()
    c.close()
    return int(page)


@pytest.mark.parametrize("mode", MODES)
def test_garbage_over_a_store_is_damage_and_nothing_writes_into_it(tmp_path: Path,
                                                                   mode: str) -> None:
    path = tmp_path / "ulm.db"
    real_store(path)
    garbage(path, 4096, path.stat().st_size - 4096)  # every page but the first
    before = fingerprint(path)
    err = refused(f"sqlite:///{path}", mode)
    assert err.found is Found.DAMAGED and "is damaged" in str(err)
    assert fingerprint(path) == before


@pytest.mark.parametrize("mode", ["write", "create"])
def test_one_damaged_data_page_stops_the_writers_quick_check(tmp_path: Path,
                                                             mode: str) -> None:
    path = tmp_path / "ulm.db"
    real_store(path)
    page = samples_page(path)
    garbage(path, (page - 1) * 4096 + 100, 2000)
    before = fingerprint(path)
    err = refused(f"sqlite:///{path}", mode)
    assert err.found is Found.DAMAGED and "is damaged" in str(err)
    assert fingerprint(path) == before


def test_a_reader_that_meets_a_damaged_page_gets_one_line(tmp_path: Path) -> None:
    path = tmp_path / "ulm.db"
    real_store(path)
    garbage(path, (samples_page(path) - 1) * 4096 + 8, 4000)
    reader = Store.open(f"sqlite:///{path}", mode="read")  # the cheap probe passes
    with pytest.raises(StoreError) as info:
        reader.snapshot(500.0, 4, 1000.0)
    reader.close()
    assert info.value.found is Found.DAMAGED and "\n" not in str(info.value)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:",
                                 "sqlite:///file::memory:?cache=shared&uri=true",
                                 "sqlite:///file:mem1?mode=memory&uri=true"])
def test_in_memory_sqlite_is_refused(url: str, mode: str) -> None:
    err = refused(url, mode)
    assert "in-memory SQLite database" in str(err) and "give a file" in str(err)


def test_a_directory_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("a file, not a directory")
    err = refused(f"sqlite:///{tmp_path}/plain/ulm/ulm.db", "create")
    assert f"cannot create the store's directory {tmp_path}/plain/ulm" in str(err)
    err = refused("sqlite:////proc/ulm-no-such/ulm.db", "create")  # even root cannot
    assert "cannot create the store's directory /proc/ulm-no-such" in str(err)


# -- passwords ----------------------------------------------------------------------------------


def test_no_error_shows_the_postgresql_password(pg_url: str, fresh_pg: str,
                                                tmp_path: Path) -> None:
    secret = "Sup3rS3cretPw"
    with_pw = fresh_pg.replace("postgres@", f"postgres:{secret}@", 1)  # trust: not checked
    assert secret in with_pw
    errors = [refused(with_pw, "read")]  # an empty database: no store yet
    engine = create_engine(fresh_pg)
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE users (id int)")
    errors.append(refused(with_pw, "create"))  # not ULM's
    with engine.begin() as c:
        c.exec_driver_sql("DROP TABLE users")
    engine.dispose()
    at_revision(fresh_pg, "0001")
    errors.append(refused(with_pw, "write"))  # older
    engine = create_engine(fresh_pg)
    with engine.begin() as c:
        c.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    errors.append(refused(with_pw, "read"))  # newer
    gone = f"postgresql+psycopg://ulm:{secret}@/ulm?host={tmp_path}/no-server"
    errors.append(refused(gone, "read"))  # no server there
    errors.append(refused(f"postgresql://ulm:{secret}@db.invalid/ulm", "read"))  # no psycopg2
    errors.append(refused(f"mysql://ulm:{secret}@db.invalid/ulm", "create"))
    kinds = {e.found for e in errors}
    assert {Found.EMPTY, Found.FOREIGN, Found.ULM, Found.NEWER} <= kinds
    for e in errors:
        assert secret not in str(e) and "***" in str(e), str(e)


def test_a_first_start_waits_out_another_process_holding_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite says "database is locked" once its own wait is over; creation tries again
    (under its own deadline) instead of failing the first start."""
    import threading
    import time

    from ulm.store import opening
    monkeypatch.setattr(opening, "BUSY_TIMEOUT_MS", 100)
    path = tmp_path / "ulm.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")  # the other first start, mid-way
    released = threading.Event()

    def release() -> None:
        time.sleep(1.0)  # ten times SQLite's own wait
        holder.execute("ROLLBACK")
        released.set()

    threading.Thread(target=release, daemon=True).start()
    store = Store.open(f"sqlite:///{path}", mode="create")
    assert released.is_set()
    assert store.found is not None and store.found.found in (Found.MISSING, Found.EMPTY)
    store.close()
    assert Store.open(f"sqlite:///{path}", mode="read").found.revision == head()  # type: ignore[union-attr]
    holder.close()
