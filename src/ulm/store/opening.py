"""Opening a store without ever touching data that is not ULM's.

Before anything is written, `probe` looks at the target read-only (SQLite: the file's header,
then a `mode=ro` connection, `immutable` when nothing else has the file open, so that not even
a -wal/-shm file appears; PostgreSQL: a read-only transaction) and says what it is: missing,
empty, ULM's at some revision, a newer ULM's, something else's, or damaged. Then:

* `read` (status, plans, explain, lists, reports): a ULM store at head, opened read-only;
* `write` (apply, maintenance, drain): a ULM store at head, read-write, after `quick_check`;
* `create` (the daemon, `ulm store init|upgrade`): also creates a missing or empty store, or
  upgrades one at an older ULM revision, under a lock (two first starts at once: one migrates,
  the other waits and finds the store made).

Anything else is a `StoreError` (one line, the URL's password blanked) and the target is left
exactly as it was.
"""

from __future__ import annotations

import enum
import functools
import os
import random
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.engine.interfaces import ExceptionContext
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from ulm.errors import UlmError
from ulm.redact import redact, redact_url
from ulm.store.readuri import read_uri

StoreMode = Literal["read", "write", "create"]
MIGRATIONS = Path(__file__).parent / "migrations"
# The tables of ULM's first revision: every ULM store has them, whatever its revision.
BASE_TABLES = frozenset({"hosts", "vms", "samples", "plans", "outcomes", "journal", "locks",
                         "maintenance", "power_events"})
_PG_LOCK = 0x554C4D  # "ULM": the advisory lock that serialises migrations on PostgreSQL
_SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 10_000  # how long one SQLite statement waits for a lock
_BUSY_WAIT_S = 60.0  # how long a first start waits for another one holding the store


class Found(enum.Enum):
    MISSING = "missing"
    EMPTY = "empty"
    ULM = "ulm"
    NEWER = "newer"
    FOREIGN = "foreign"
    DAMAGED = "damaged"


@dataclass(frozen=True, slots=True)
class Probe:
    found: Found
    revision: str = ""
    detail: str = ""


class StoreError(UlmError):
    """The store cannot be used as asked; `found` says what the target turned out to be."""

    def __init__(self, message: str, found: Found | None = None) -> None:
        super().__init__(redact(message))
        self.found = found


@dataclass(frozen=True, slots=True)
class Target:
    url: URL
    shown: str  # fit for a message: the path, or the URL with its password blanked
    path: Path | None  # SQLite only


@functools.cache
def revisions() -> tuple[str, ...]:
    """ULM's Alembic revisions, oldest first."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return tuple(reversed([s.revision for s in ScriptDirectory.from_config(cfg)
                           .walk_revisions()]))


def head() -> str:
    return revisions()[-1]


def target(url: str) -> Target:
    shown = redact_url(url)
    try:
        u = make_url(url)
    except Exception as exc:  # SQLAlchemy's own parse error names the problem
        raise StoreError(f"cannot use store {shown!r}: {_line(exc)}") from None
    backend = u.get_backend_name()
    if backend == "postgresql":
        return Target(u, shown, None)
    if backend != "sqlite":
        raise StoreError(f"cannot use store {shown!r}: ULM keeps its store in SQLite "
                         "(sqlite:////var/lib/ulm/ulm.db) or PostgreSQL "
                         "(postgresql+psycopg://user@host/db)")
    db = u.database or ""
    if db in ("", ":memory:") or db.startswith("file::memory:") or \
            u.query.get("mode") == "memory":
        raise StoreError(f"store {shown!r} is an in-memory SQLite database, which holds "
                         "nothing once the command ends: give a file "
                         "(sqlite:////var/lib/ulm/ulm.db)")
    if u.query:  # URI filenames and options would bypass the checks below
        raise StoreError(f"cannot use store {shown!r}: give a plain path, without "
                         "?options (sqlite:////var/lib/ulm/ulm.db)")
    path = Path(db).absolute()
    return Target(u, str(path), path)


def open_engine(url: str, mode: StoreMode) -> tuple[Engine, Probe]:
    """An engine on a store fit for `mode`, and what the target was before it was opened."""
    t = target(url)
    before = probe(t, check=mode != "read")
    _refuse(t, before, mode)
    if t.path is not None and mode == "create" and before.found is Found.MISSING:
        _make_dir(t.path)
    engine = _engine(t, mode)
    try:
        if mode == "create" and (before.found is not Found.ULM or before.revision != head()):
            before = _migrate(engine, t)  # what it was under the lock: made by us or not
    except BaseException:
        engine.dispose()
        raise
    return engine, before


def probe(t: Target, check: bool = False) -> Probe:
    """What `t` is, found without writing anything; `check` runs SQLite's quick_check too."""
    if t.path is None:
        engine = _engine(t, "read")
        try:
            with engine.connect() as c:
                return _inspect(c)
        except StoreError:
            raise
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the store at {t.shown}: {_line(exc)}") from None
        finally:
            engine.dispose()
    return _probe_file(t, t.path, check)


def _probe_file(t: Target, path: Path, check: bool) -> Probe:
    try:
        if path.is_dir():
            return Probe(Found.FOREIGN, detail="it is a directory")
        if not path.exists():
            return Probe(Found.MISSING)
        with path.open("rb") as f:
            header = f.read(100)
    except OSError as exc:
        raise StoreError(f"cannot read the store at {t.shown}: {exc.strerror or exc}") from None
    if not header:
        return Probe(Found.EMPTY)
    if not header.startswith(_SQLITE_MAGIC):
        return Probe(Found.FOREIGN, detail="it is not a SQLite database")
    if len(header) < 100:
        return Probe(Found.DAMAGED, detail="the file is truncated")
    engine = create_engine("sqlite://", poolclass=NullPool,
                           creator=lambda: sqlite3.connect(read_uri(path), uri=True,
                                                           timeout=10.0))
    try:
        with engine.connect() as c:
            c.exec_driver_sql("PRAGMA query_only=ON")
            found = _inspect(c)
            if check and found.found is Found.ULM:
                rows = [line.strip("* ") for r in c.exec_driver_sql("PRAGMA quick_check(5)")
                        for line in str(r[0]).splitlines() if line.strip("* ")]
                if rows != ["ok"]:  # SQLite's "no problem found"; else what it found
                    return Probe(Found.DAMAGED, found.revision, "; ".join(rows[:2])[:200])
            return found
    except DBAPIError as exc:
        if _corrupt(exc.orig):
            return Probe(Found.DAMAGED, detail=_line(exc))
        raise StoreError(f"cannot read the store at {t.shown}: {_line(exc)}") from None
    finally:
        engine.dispose()


def _inspect(c: Connection) -> Probe:
    insp = inspect(c)
    names = {n for n in [*insp.get_table_names(), *insp.get_view_names()]
             if not n.startswith("sqlite_")}
    if not names:
        return Probe(Found.EMPTY)
    versions: list[str] = []
    if "alembic_version" in names and "version_num" in {
            col["name"] for col in insp.get_columns("alembic_version")}:
        versions = [str(r[0]) for r in c.execute(text("SELECT version_num FROM alembic_version"))]
    return classify(names, versions)


def classify(names: set[str], versions: list[str]) -> Probe:
    """ULM's = ULM's base tables and one ULM revision; a 4-digit revision past ours with
    those tables is a newer ULM's; anything else belongs to someone else."""
    if len(versions) == 1 and names >= BASE_TABLES:
        rev = versions[0]
        if rev in revisions():
            return Probe(Found.ULM, rev)
        if re.fullmatch(r"\d{4}", rev) and int(rev) > int(head()):
            return Probe(Found.NEWER, rev)
    if versions:
        return Probe(Found.FOREIGN, detail=f"its Alembic revision {', '.join(versions)!r} "
                                           "is not ULM's")
    shown = sorted(names)
    more = f" and {len(shown) - 5} more" if len(shown) > 5 else ""
    return Probe(Found.FOREIGN, detail=f"it holds tables ULM did not make: "
                                       f"{', '.join(shown[:5])}{more}")


def _refuse(t: Target, p: Probe, mode: StoreMode) -> None:
    where = t.shown
    if p.found is Found.FOREIGN:
        raise StoreError(f"{where} is not a ULM store ({p.detail}); ULM leaves it untouched: "
                         "point [store] url at a new file or an empty database", p.found)
    if p.found is Found.DAMAGED:
        raise StoreError(f"the store at {where} is damaged ({p.detail}); ULM will not use "
                         "it: restore it from a backup, or move it away and let `ulm store "
                         "init` start a new one", p.found)
    if p.found is Found.NEWER:
        raise StoreError(f"{where}: this store was written by a newer ULM (revision "
                         f"{p.revision}); upgrade ULM", p.found)
    if mode == "create":
        return
    if p.found in (Found.MISSING, Found.EMPTY):
        raise StoreError(f"no store at {where}: run `ulm run` or `ulm store init` first",
                         p.found)
    if p.revision != head():
        raise StoreError(f"the store at {where} is at revision {p.revision}, this ULM needs "
                         f"{head()}: run `ulm store upgrade` (or `ulm run`)", p.found)


def _make_dir(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the store's directory {path.parent}: "
                         f"{exc.strerror or exc}") from None
    if not os.access(path.parent, os.W_OK):
        raise StoreError(f"cannot create the store {path}: its directory is not writable")


def _engine(t: Target, mode: StoreMode) -> Engine:
    url = t.url
    read_path = t.path if mode == "read" else None
    try:
        if read_path is not None:
            def connect() -> sqlite3.Connection:
                return sqlite3.connect(read_uri(read_path), uri=True, check_same_thread=False,
                                       timeout=BUSY_TIMEOUT_MS / 1000)
            engine = create_engine("sqlite://", poolclass=NullPool, creator=connect)
        else:
            engine = create_engine(url)
    except Exception as exc:  # a missing driver (e.g. postgresql:// wants psycopg2)
        raise StoreError(f"cannot use store {t.shown!r}: {_line(exc)}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_read if mode == "read" else _sqlite_write)
    elif mode == "read":
        event.listen(engine, "connect", _pg_read)
    event.listen(engine, "handle_error", functools.partial(_damaged, t.shown))
    return engine


def _migrate(engine: Engine, t: Target) -> Probe:
    """Creates or upgrades the store under a lock, deciding again under it: another ULM may
    have just made it (then there is nothing left to do), or it may not be ULM's after all."""
    deadline = time.monotonic() + _BUSY_WAIT_S
    while True:
        try:
            return _migrate_once(engine, t)
        except _Busy:
            # SQLite answers "database is locked" without waiting in a few races (a WAL
            # file being set up or removed by the other process); the attempt wrote nothing.
            if time.monotonic() > deadline:
                raise StoreError(f"cannot create or upgrade the store at {t.shown}: another "
                                 f"process kept it locked for {_BUSY_WAIT_S:.0f} s") from None
            time.sleep(random.uniform(0.05, 0.25))


class _Busy(Exception):
    pass


def _migrate_once(engine: Engine, t: Target) -> Probe:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.connect() as c:
            if engine.dialect.name == "sqlite":
                c.exec_driver_sql("BEGIN IMMEDIATE")  # waits (busy_timeout) for the other one
            else:
                c.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
            now = _inspect(c)
            _refuse(t, now, "create")
            if now.found is Found.EMPTY or now.revision != head():
                cfg.attributes["connection"] = c
                command.upgrade(cfg, "head")
            c.commit()
            return now
    except UlmError:
        raise
    except DBAPIError as exc:
        if _busy(exc.orig):
            raise _Busy from None
        raise StoreError(f"cannot create or upgrade the store at {t.shown}: {_line(exc)}",
                         ) from None
    except Exception as exc:  # the database refused: a read-only file, a full disk, ...
        raise StoreError(f"cannot create or upgrade the store at {t.shown}: {_line(exc)}",
                         ) from None


CACHE_KIB = 65536  # 64 MiB of page cache for the writer


def _sqlite_write(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")  # first: the next may have to wait
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    # A round at 10,000 VMs adds ~11,000 rows to five sample indexes at random places (by
    # name): with SQLite's default 2 MB page cache nearly every one is a page read.
    cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    cur.close()


def _sqlite_read(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA query_only=ON")
    cur.close()


def _pg_read(dbapi_conn: Any, _record: Any) -> None:
    with dbapi_conn.cursor() as cur:
        cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    dbapi_conn.commit()  # a SET inside a transaction that is rolled back would be undone


def _damaged(shown: str, ctx: ExceptionContext) -> None:
    """A page found damaged after opening: one line for the user, not a traceback."""
    if _corrupt(ctx.original_exception):
        raise StoreError(f"the store at {shown} is damaged ({_line(ctx.original_exception)}); "
                         "ULM will not use it: restore it from a backup", Found.DAMAGED)


def _busy(exc: BaseException | None) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _corrupt(exc: BaseException | None) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (sqlite3.SQLITE_CORRUPT,
                                                     sqlite3.SQLITE_NOTADB)


def _line(exc: BaseException) -> str:
    """The first line of a driver's message (SQLAlchemy appends the SQL and a link)."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(orig).strip().splitlines()
    return redact(lines[0] if lines else type(orig).__name__)


def sqlite_write_pragmas(dbapi_conn: Any, record: Any) -> None:
    """The pragmas of a read-write SQLite connection, for a second engine on the same store
    (the daemon's lock heartbeat)."""
    _sqlite_write(dbapi_conn, record)
