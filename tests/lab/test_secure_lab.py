"""The production transports on the real lab (`ulm lab up --secure`, part of the session lab):
stats and live migration over qemu+tls:// (the migration stream in TLS too) and qemu+ssh://,
and one clear line naming the host when a key, a host key or a certificate is wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.helpers import in_controller
from ulm.lab import secure
from ulm.lab.lab import Lab, exec_prefix

pytestmark = pytest.mark.lab
ULM = str(Path(sys.executable).parent / "ulm")

# Runs in the controller: ULM's own driver and collector on the config's URIs; one collection
# (host and VM stats), then one migration VM SRC -> DST; prints what happened as JSON.
ROUND = """
import json, sys, time
from pathlib import Path
from ulm.config import load_config
from ulm.collect.libvirt_source import LibvirtSource
from ulm.drivers.base import MigrationOptions
from ulm.drivers.libvirt import LibvirtHypervisor
cfg = load_config(Path(sys.argv[1]))
hv = LibvirtHypervisor({h.name: h.libvirt_uri for h in cfg.hosts},
                       {h.name: h.migration_uri for h in cfg.hosts if h.migration_uri})
src = LibvirtSource(hv.conn, [h.name for h in cfg.hosts], time.monotonic, uris=hv.uris)
col = src.collect(time.time())
job = hv.start_migration(sys.argv[2], sys.argv[3], sys.argv[4], MigrationOptions())
while (st := hv.poll(job)).state.value == "running":
    time.sleep(0.2)
print(json.dumps({"hosts": {h.host: [h.ok, h.cores, h.mem_total_mib, h.error] for h in col.hosts},
                  "vms": {v.vm: [v.host, v.mem_mib] for v in col.vms},
                  "state": st.state.value, "error": st.error, "where": hv.locate(sys.argv[2])}))
"""


def config(tmp: Path, lab: Lab, transport: str) -> Path:
    text = lab.config_toml(transport=transport).replace(
        f"sqlite:///{lab.paths.root}/ulm.db", f"sqlite:///{tmp}/ulm.db")
    path = tmp / f"{transport}.toml"
    path.write_text(text)
    return path


def round_trip(cfg: Path, vm: str, src: str, dst: str) -> dict[str, object]:
    code = ROUND.replace("sys.argv[1]", repr(str(cfg))).replace("sys.argv[2]", repr(vm)) \
        .replace("sys.argv[3]", repr(src)).replace("sys.argv[4]", repr(dst))
    out: dict[str, object] = in_controller(code)
    return out


def test_tls_stats_and_live_migration_with_the_stream_in_tls(clean_lab: Lab,
                                                             tmp_path: Path) -> None:
    lab = clean_lab
    lab.vm_add("sec-tls", "labh1", 64, "idle")
    cfg = config(tmp_path, lab, "tls")
    assert 'libvirt_uri = "qemu+tls://10.77.0.1/system' in cfg.read_text()
    got = round_trip(cfg, "sec-tls", "labh1", "labh2")
    hosts = got["hosts"]
    assert isinstance(hosts, dict)
    for h in ("labh1", "labh2", "labh3"):
        ok, cores, mem, error = hosts[h]
        assert ok and cores > 0 and mem == 4096, error
    assert got["vms"] == {"sec-tls": ["labh1", 64]}
    assert (got["state"], got["where"]) == ("completed", ["labh2"]), got["error"]
    assert lab.find("sec-tls") == "labh2"

    # The memory stream is TLS too (VIR_MIGRATE_TLS): when the source's QEMU trusts only
    # another CA, QEMU's own handshake with the destination fails and the VM stays put.
    # Without the flag QEMU would send the stream in the clear and this migration would work.
    qemu = lab.paths.host(2) / "etc-libvirt" / "pki" / "qemu"
    saved = {p.name: p.read_bytes() for p in qemu.iterdir()}
    rogue = secure.make_ca(tmp_path / "rogue", "Rogue CA")
    try:
        (qemu / "ca-cert.pem").write_bytes(rogue.cert.read_bytes())
        secure.issue(rogue, "labh2", qemu / "client-cert.pem", qemu / "client-key.pem")
        got = round_trip(cfg, "sec-tls", "labh2", "labh3")
    finally:
        for name, data in saved.items():
            (qemu / name).write_bytes(data)
    assert got["state"] == "failed"
    assert "certificate" in str(got["error"]).lower() or "tls" in str(got["error"]).lower()
    assert got["where"] == ["labh2"]


def test_ssh_stats_and_live_migration_peer_to_peer(clean_lab: Lab, tmp_path: Path) -> None:
    lab = clean_lab
    lab.vm_add("sec-ssh", "labh1", 64, "idle")
    cfg = config(tmp_path, lab, "ssh")
    assert 'libvirt_uri = "qemu+ssh://root@10.77.0.1/system?keyfile=' in cfg.read_text()
    got = round_trip(cfg, "sec-ssh", "labh1", "labh3")
    hosts = got["hosts"]
    assert isinstance(hosts, dict)
    assert all(v[0] for v in hosts.values()), hosts
    assert got["vms"] == {"sec-ssh": ["labh1", 64]}
    assert (got["state"], got["where"]) == ("completed", ["labh3"]), got["error"]
    assert lab.find("sec-ssh") == "labh3"
    # Both legs were ssh with keys: the controller's into labh1, and labh1's libvirtd (its own
    # key, its own known hosts) into labh3 for the peer-to-peer migration.
    log1 = (lab.paths.host(1) / "run" / "sshd.log").read_text()
    log3 = (lab.paths.host(3) / "run" / "sshd.log").read_text()
    assert "Accepted publickey for root from 10.77.0.100" in log1
    assert "Accepted publickey for root from 10.77.0.1 " in log3


def test_wrong_key_host_key_or_certificate_is_one_line_naming_the_host(
        lab: Lab, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong_key"
    secure.keygen(wrong, "not-authorized")
    rogue = secure.make_ca(tmp_path / "rogue", "Rogue CA")
    trusts_rogue = secure.client_pki(rogue, "labctl", tmp_path / "trusts-rogue")
    good_ca = secure.controller_pki(lab.paths) / "cacert.pem"
    bundle = tmp_path / "bundle.pem"  # trusts both: only the *server* can refuse the cert
    bundle.write_bytes(good_ca.read_bytes() + rogue.cert.read_bytes())
    rogue_client = secure.client_pki(rogue, "labctl", tmp_path / "rogue-client", trust=bundle)
    hosts = {
        "labh1": f"qemu+ssh://root@10.77.0.1/system?keyfile={wrong}",
        "labh2": secure.ssh_uri(lab.paths, 2),  # its host key will not match known_hosts
        "labh3": secure.tls_uri(3, trusts_rogue),
        "labh1-tls": secure.tls_uri(1, rogue_client),
    }
    cfg = tmp_path / "bad.toml"
    cfg.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/ulm.db"\n' + "".join(
        f'[[hosts]]\nname = "{n}"\nlibvirt_uri = "{u}"\n' for n, u in hosts.items()))
    known = secure.controller_etc_ssh(lab.paths) / "ssh_known_hosts"
    saved = known.read_text()
    other_key = wrong.with_name("wrong_key.pub").read_text().split()[:2]
    try:  # labh2 "was reinstalled": the controller knows another host key for it
        known.write_text("".join(
            f"10.77.0.2,labh2 {' '.join(other_key)}\n" if line.startswith("10.77.0.2,") else
            line + "\n" for line in saved.splitlines()))
        out = subprocess.run([*exec_prefix(), ULM, "run", "-c", str(cfg), "--mode", "observe",
                              "--once"], capture_output=True, text=True, timeout=120)
    finally:
        known.write_text(saved)
    text = out.stdout + out.stderr
    lines = {h: [ln for ln in text.splitlines() if f" {h} " in ln] for h in hosts}
    expect = {"labh1": "over ssh to qemu+ssh://root@10.77.0.1: the key was refused",
              "labh2": "over ssh to qemu+ssh://root@10.77.0.2: the host key differs from the "
                       "one in known_hosts",
              "labh3": "over tls to qemu+tls://10.77.0.3: the host's certificate is not trusted",
              "labh1-tls": "over tls to qemu+tls://10.77.0.1: the host ended the TLS handshake"}
    print(text)  # shown when the test fails
    for h, what in expect.items():
        assert len(lines[h]) == 1 and what in lines[h][0], (h, text[-3000:])
    # no secret in any of it: not the private key, not its body
    body = wrong.read_text().splitlines()[1]
    assert "PRIVATE KEY" not in text and body not in text
