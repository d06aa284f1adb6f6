"""Real `ulm run` processes on a store in a temporary directory; hosts on libvirt's test
driver (`test:///default`: in-process, no daemon, no network)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ULM = str(Path(sys.executable).parent / "ulm")

POLICY = """
name = "{name}"
[overload]
threshold = {threshold}
"""


def configure(tmp: Path, store_dir: Path | None = None) -> Path:
    (tmp / "policy.toml").write_text(POLICY.format(name="first", threshold=0.8))
    cfg = tmp / "ulm.toml"
    cfg.write_text(f'policy = "policy.toml"\n[store]\nurl = "sqlite:///{store_dir or tmp}/ulm.db"'
                   '\n[collect]\ninterval_s = 1\n'
                   '[[hosts]]\nname = "t1"\nlibvirt_uri = "test:///default"\n')
    return cfg


def eventually(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


class Daemon:
    """`ulm run` in the background, its stderr in a file."""

    def __init__(self, cfg: Path, mode: str = "observe", name: str = "daemon",
                 args: tuple[str, ...] = ()) -> None:
        self.err = cfg.parent / f"{name}.err"
        with self.err.open("w") as err:  # the child keeps its own descriptor
            self.proc = subprocess.Popen([ULM, "run", "-c", str(cfg), "--mode", mode, *args],
                                         stdout=subprocess.DEVNULL, stderr=err)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.err.read_text()

    def lines(self, text: str) -> list[str]:
        return [x for x in self.log().splitlines() if text in x]

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        assert eventually(lambda: bool(self.lines(text)) or self.proc.poll() is not None,
                          timeout), f"no {text!r} in:\n{self.log()[-3000:]}"
        assert self.lines(text), f"exited {self.proc.returncode}:\n{self.log()[-3000:]}"
        return self.lines(text)[-1]

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
