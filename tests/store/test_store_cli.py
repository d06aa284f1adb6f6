"""The store through the real `ulm` command: every command on a missing, foreign, damaged,
newer or older store says one line and leaves the target alone; two first starts at once.

The daemon here watches libvirt's built-in test driver (test:///default, in-process: no
network), so `ulm run` runs for real without the lab."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from tests.store.test_opening import at_revision, fingerprint, garbage, real_store, sqlite_app
from tests.warm_ulm import warm_ulm
from ulm.store import Store
from ulm.store.opening import head

CONFIG = """
[store]
url = "{url}"
[collect]
interval_s = 1
[power_models.small]
watts = [60, 80, 95, 110, 120, 130, 140, 150, 160, 170, 180]
[[hosts]]
name = "t1"
libvirt_uri = "test:///default"
power_curve = "small"
labels = {{ rack = "r7", room = "west" }}
"""

READERS = (("status",), ("status", "--format", "json"), ("plans",), ("explain",),
           ("maintenance", "list"), ("report", "energy"))
WRITERS = (("maintenance", "add", "t1", "--start", "+1h", "--end", "+2h"), ("drain", "t1"),
           ("undrain", "t1"), ("maintenance", "cancel", "1"), ("apply", "p-1"))
CREATORS = (("run", "--once", "--mode", "observe"), ("store", "init"), ("store", "upgrade"))
EVERY = READERS + WRITERS + CREATORS


def config(tmp: Path, url: str) -> Path:
    path = tmp / "ulm.toml"
    path.write_text(CONFIG.format(url=url))
    return path


def ulm(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return warm_ulm().run([*args, "-c", str(cfg)], timeout=120)  # a real `ulm` process


def one_line(out: subprocess.CompletedProcess[str], *words: str) -> str:
    assert out.returncode == 2, (out.args, out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (out.args, out.stderr)
    for w in words:
        assert w in lines[0], (out.args, lines[0])
    return lines[0]


def test_read_only_commands_on_no_store_say_so_and_create_nothing(tmp_path: Path) -> None:
    cfg = config(tmp_path, f"sqlite:///{tmp_path}/var/ulm.db")
    for args in READERS + WRITERS:
        one_line(ulm(cfg, *args), f"no store at {tmp_path}/var/ulm.db",
                 "run `ulm run` or `ulm store init` first")
    one_line(ulm(cfg, "store", "upgrade"), "no store at", "`ulm store init` creates one")
    assert not (tmp_path / "var").exists()


def test_init_then_readers_then_the_daemon_share_one_store(tmp_path: Path) -> None:
    cfg = config(tmp_path, f"sqlite:///{tmp_path}/var/ulm.db")
    out = ulm(cfg, "store", "init")
    assert out.returncode == 0 and "store created" in out.stdout, out.stderr
    assert "already" in ulm(cfg, "store", "init").stdout
    db = tmp_path / "var" / "ulm.db"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    for args in READERS:
        if args != ("explain",):  # no plan yet: its own one-line answer
            out = ulm(cfg, *args)
            assert out.returncode == 0, (args, out.stderr)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before  # readers wrote nothing
    assert ulm(cfg, "run", "--once", "--mode", "observe").returncode == 0


@pytest.mark.parametrize("kind", ["app with a hosts table", "text file"])
def test_every_command_refuses_what_is_not_ulms_and_leaves_it_byte_identical(
        tmp_path: Path, kind: str) -> None:
    (tmp_path / "data").mkdir()  # the config elsewhere: the directory's listing is a witness
    path = tmp_path / "data" / "app.db"
    if kind == "text file":
        path.write_text("# not a database\n" * 100)
    else:
        sqlite_app(path)
    before = fingerprint(path)
    cfg = config(tmp_path, f"sqlite:///{path}")
    # Every command on the database; on the text file (the same refusal, found earlier in
    # the probe) one command of each store mode.
    for args in EVERY if kind != "text file" else (READERS[0], WRITERS[0], *CREATORS):
        one_line(ulm(cfg, *args), f"{path} is not a ULM store", "leaves it untouched")
    assert fingerprint(path) == before


def test_every_command_on_a_damaged_store_says_so_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "ulm.db"
    real_store(path)
    garbage(path, 4096, path.stat().st_size - 4096)
    before = fingerprint(path)
    cfg = config(tmp_path, f"sqlite:///{path}")
    for args in EVERY:
        one_line(ulm(cfg, *args), "is damaged")
    assert fingerprint(path) == before


def test_newer_and_older_stores(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ulm.db"
    cfg = config(tmp_path, url)
    at_revision(url, "0002")
    one_line(ulm(cfg, "status"), "is at revision 0002", "run `ulm store upgrade`")
    out = ulm(cfg, "store", "upgrade")
    assert out.returncode == 0 and f"upgraded from revision 0002 to {head()}" in out.stdout
    assert ulm(cfg, "status").returncode == 0
    engine = create_engine(url)
    with engine.begin() as c:
        c.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    for args in (("status",), ("run", "--once"), ("store", "upgrade")):
        one_line(ulm(cfg, *args), "this store was written by a newer ULM (revision 9999); "
                                  "upgrade ULM")


def test_in_memory_and_impossible_places(tmp_path: Path) -> None:
    for args in (("run", "--once"), ("status",), ("store", "init")):
        one_line(ulm(config(tmp_path, "sqlite:///:memory:"), *args), "in-memory")
    (tmp_path / "file").write_text("x")
    one_line(ulm(config(tmp_path, f"sqlite:///{tmp_path}/file/sub/ulm.db"), "run", "--once"),
             f"cannot create the store's directory {tmp_path}/file/sub")


def test_a_postgresql_password_never_shows(fresh_pg: str, tmp_path: Path) -> None:
    secret = "Sup3rS3cretPw"
    cfg = config(tmp_path, fresh_pg.replace("postgres@", f"postgres:{secret}@", 1))
    lines = [one_line(ulm(cfg, "status"), "no store at")]
    engine = create_engine(fresh_pg)
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE hosts (id int)")
    engine.dispose()
    lines += [one_line(ulm(cfg, *args), "is not a ULM store") for args in CREATORS]
    gone = config(tmp_path, f"postgresql+psycopg://u:{secret}@/x?host={tmp_path}/nothing")
    lines.append(one_line(ulm(gone, "status"), "cannot open the store"))
    for line in lines:
        assert secret not in line and ("postgres:***@" in line or "u:***@" in line), line


def race(tmp: Path, n: int, *args: str) -> list[subprocess.CompletedProcess[str]]:
    """`n` real `ulm` processes that start the same command at the same instant (forked by
    the warm ulm, each waits at the line until all are there)."""
    return warm_ulm().together(n, args)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_first_starts_one_store_no_sql_dump(backend: str, tmp_path: Path,
                                                       request: pytest.FixtureRequest) -> None:
    url = (f"sqlite:///{tmp_path}/new/ulm.db" if backend == "sqlite"
           else str(request.getfixturevalue("fresh_pg")))
    cfg = config(tmp_path, url)
    runs = race(tmp_path, 2, "run", "--once", "--mode", "observe", "-c", str(cfg))
    for r in runs:
        assert "Traceback" not in r.stderr and "[SQL:" not in r.stderr, r.stderr
        if r.returncode != 0:  # the loser may find the winner's daemon lock
            one_line(r, "another ULM daemon holds the lock")
    assert any(r.returncode == 0 for r in runs)
    inits = race(tmp_path, 4, "store", "init", "-c", str(cfg))  # now a ULM store: no-ops
    assert all(r.returncode == 0 and "already" in r.stdout for r in inits), inits
    assert Store.open(url, mode="read").found.revision == head()  # type: ignore[union-attr]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_inits_of_a_new_store(backend: str, tmp_path: Path,
                                         request: pytest.FixtureRequest) -> None:
    url = (f"sqlite:///{tmp_path}/new/ulm.db" if backend == "sqlite"
           else str(request.getfixturevalue("fresh_pg")))
    runs = race(tmp_path, 4, "store", "init", "-c", str(config(tmp_path, url)))
    assert all(r.returncode == 0 and not r.stderr for r in runs), runs
    made = [r for r in runs if "store created" in r.stdout]
    assert len(made) == 1 and all("already" in r.stdout for r in runs if r not in made)
    assert Store.open(url, mode="read").found.revision == head()  # type: ignore[union-attr]


def test_status_json_shows_config_labels_and_power_curve(tmp_path: Path) -> None:
    import json
    cfg = config(tmp_path, f"sqlite:///{tmp_path}/ulm.db")
    assert ulm(cfg, "run", "--once", "--mode", "observe").returncode == 0
    out = ulm(cfg, "status", "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    (t1,) = doc["hosts"]
    assert t1["labels"] == {"rack": "r7", "room": "west"} and t1["power"] == "small"
    assert doc["power_curves"] == {"small": [60, 80, 95, 110, 120, 130, 140, 150, 160, 170, 180]}
