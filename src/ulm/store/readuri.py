"""The URI a read-only command opens a SQLite store with: no side file created, no row stale."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote


def read_uri(path: Path) -> str:
    """How a read-only command opens a SQLite store without creating or writing a file.

    A connection to a WAL database (header byte 18 = 2) creates `-wal` and `-shm` beside it
    when they are missing. So: no `-wal` means no writer has the database open and every
    committed page is in the main file (a writer's last close checkpoints and deletes it):
    the file is read `immutable` (no locks, no side files). A `-wal` means a writer is or was
    active: the reader needs the WAL and its index to see the committed rows (`immutable`
    would read stale ones), and opens `mode=ro`: both files exist already, nothing is
    created; SQLite still sets its read marks in the `-shm` index (its bytes change, its
    size and the database and `-wal` do not), which no reader of a live WAL can avoid.

    The race: a daemon that starts after this check and writes while the immutable reader
    reads leaves its rows in its new `-wal`, which the reader does not see: it reads the
    consistent state of before the daemon started, as if it had run a moment earlier. That
    holds until the daemon's first checkpoint copies pages into the main file, which takes
    `wal_autocheckpoint` (1,000) pages of writes; a read-only command's reads are shorter. The
    check is made for each connection (`_engine` pools none), so a long reader decides
    again each time it reads."""
    wal = False
    try:
        with path.open("rb") as f:
            wal = f.read(19)[18:19] == b"\x02"
    except OSError:
        pass  # the connection says what is wrong
    immutable = wal and not Path(f"{path}-wal").exists()
    return f"file:{quote(str(path), safe='/')}?mode=ro" + ("&immutable=1" if immutable else "")
