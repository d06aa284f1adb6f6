"""Process helpers shared by the daemon and the lab."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from types import FrameType


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


#: What a supervisor (systemd, a shell, a test) sends to stop or reload a wrapped command.
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def run_forwarding(argv: Sequence[str]) -> int:
    """Runs `argv`, passes SIGTERM, SIGINT and SIGHUP on to it and waits for it: a wrapper
    such as `ulm lab exec` is what gets signalled, and its death must not leave the command
    running unsupervised. Returns the command's status (128 + N if a signal N ended it)."""
    proc: subprocess.Popen[bytes] | None = None
    early: list[int] = []  # arrived before the child existed: sent once it does

    def forward(signum: int, frame: FrameType | None) -> None:
        if proc is None:
            early.append(signum)
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)

    before = {s: signal.signal(s, forward) for s in FORWARDED}
    try:
        proc = subprocess.Popen(list(argv))
        for signum in early:
            proc.send_signal(signum)
        code = proc.wait()
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
    return 128 - code if code < 0 else code
