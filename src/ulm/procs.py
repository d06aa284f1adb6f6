"""Process helpers shared by the daemon and the lab."""

from __future__ import annotations

from pathlib import Path


def alive(pid: int) -> bool:
    """True if the process exists and is not a zombie.

    PID 1 on some machines reaps orphans lazily, and `kill -0` succeeds on a zombie, so the
    state letter in /proc/PID/stat is what tells.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
