"""`ulm run --http`: the daemon serves its API beside its loop (a real process, libvirt's test
driver as the host, a real SQLite store)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests import secrets
from tests.collect.prom_fixtures import free_port

ULM = str(Path(sys.executable).parent / "ulm")


def _get(url: str, token: str) -> tuple[int, object]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def test_the_daemon_serves_its_api_while_it_runs(tmp_path: Path) -> None:
    token = tmp_path / "viewer.token"
    token.write_text(secrets.TOKEN + "-run-http")
    token.chmod(0o600)
    cfg = tmp_path / "ulm.toml"
    cfg.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/ulm.db"\n[collect]\ninterval_s = 1\n'
                   '[[api.tokens]]\nname = "ci"\nrole = "viewer"\n'
                   f'token_file = "{token}"\n'
                   '[[hosts]]\nname = "h1"\nlibvirt_uri = "test:///default"\n')
    port = free_port()
    proc = subprocess.Popen([ULM, "run", "--config", str(cfg), "--mode", "observe",
                             "--rounds", "30", "--http", f"127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 60
        hosts: object = None
        while time.monotonic() < deadline:
            try:
                status, hosts = _get(f"{base}/hosts", secrets.TOKEN + "-run-http")
                if status == 200 and hosts:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.5)
        assert isinstance(hosts, list) and hosts[0]["name"] == "h1", hosts
        assert _get(f"{base}/hosts", "not-the-token")[0] == 401
        status, mode = _get(f"{base}/mode", secrets.TOKEN + "-run-http")
        assert status == 200 and "observe" in json.dumps(mode)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert secrets.TOKEN not in out + err
