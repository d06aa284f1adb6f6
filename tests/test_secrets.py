"""No credential ever reaches a person: every command's output, error and log, on every failure
path we know of, is searched for the test secrets (tests/secrets.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import secrets
from tests.warm_ulm import warm_ulm

# Store URLs that fail in different layers: driver import, URL parse, connection, unknown dialect.
STORE_URLS = [
    f"postgresql+asyncpg://ulm:{secrets.STORE_PW}@127.0.0.1:1/ulm",
    f"mysql://ulm:{secrets.STORE_PW}@127.0.0.1:1/ulm",
    f"postgresql+psycopg://ulm:{secrets.STORE_PW}@127.0.0.1:notaport/ulm",
    f"postgresql+psycopg://ulm:{secrets.STORE_PW}@127.0.0.1:1/ulm",
    f"nosuchdb://ulm:{secrets.STORE_PW}@127.0.0.1/ulm",
]


def _config(tmp_path: Path, url: str, power: str) -> Path:
    path = tmp_path / "ulm.toml"
    path.write_text(f'[store]\nurl = "{url}"\n[[hosts]]\nname = "a"\n'
                    f'libvirt_uri = "test:///default"\n{power}\n')
    return path


def _run(*argv: str, env: dict[str, str] | None = None) -> str:
    out = warm_ulm().run(argv, timeout=120, env={**os.environ, **(env or {})})
    text = out.stdout + out.stderr
    print(text)  # into the captured output, which the session hook searches as well
    return text


CASES = [(url, ["status"]) for url in STORE_URLS] + [
    (STORE_URLS[i], command) for i in (0, 3)
    for command in (["plans"], ["maintenance", "list"], ["report", "energy"])]


@pytest.mark.parametrize(("url", "command"), CASES)
def test_a_failing_store_url_never_shows_its_password(tmp_path: Path, url: str,
                                                     command: list[str]) -> None:
    cfg = _config(tmp_path, url, "")
    text = _run(*command, "--config", str(cfg))
    assert "error:" in text  # it did fail, and said so ...
    assert secrets.STORE_PW not in text  # ... without the password
    assert "127.0.0.1" in text or "store" in text  # and still says which store


@pytest.mark.parametrize("power", [
    # an inline password next to a mistake in the same table: the error quotes the table
    f'power = {{ driver = "ipmi", address = "127.0.0.1", username = "u", '
    f'password = "{secrets.BMC_PW}", port = 99999 }}',
    f'power = {{ driver = "ipmi", address = "127.0.0.1", username = "u", '
    f'password = "{secrets.BMC_PW}", bogus = 1 }}',
    # a password of the wrong type: pydantic would quote the value
    'power = { driver = "ipmi", address = "127.0.0.1", username = "u", password = 12345678 }',
    f'power = {{ driver = "ipmi", address = "127.0.0.1", username = "u", '
    f'password = "{secrets.BMC_PW}", password_env = "X" }}',
])
def test_config_errors_never_quote_a_password(tmp_path: Path, power: str) -> None:
    cfg = _config(tmp_path, f"sqlite:///{tmp_path}/s.db", power)
    text = _run("status", "--config", str(cfg))
    assert "error:" in text
    assert secrets.BMC_PW not in text and "12345678" not in text


def test_an_unreachable_bmc_is_reported_without_its_password(tmp_path: Path) -> None:
    pw = tmp_path / "bmc.pw"
    pw.write_text(secrets.BMC_PW)
    # port 1 on loopback: nothing answers, the power reading fails and is logged
    power = (f'power = {{ driver = "ipmi", address = "127.0.0.1", port = 1, username = "admin", '
             f'password_file = "{pw}", timeout_s = 1 }}')
    cfg = _config(tmp_path, f"sqlite:///{tmp_path}/s.db", power)
    for fmt in ("text", "json"):
        text = _run("run", "--config", str(cfg), "--once", "--mode", "observe",
                    "--log-format", fmt)
        assert "127.0.0.1" in text  # the failure is reported, naming the BMC
        assert secrets.BMC_PW not in text
