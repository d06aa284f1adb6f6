"""`ulm lab up --secure`: the production transports on the lab — an sshd per host (key
authentication only) and a TLS libvirtd listener with certificates from a lab CA.

All hosts share one filesystem, so every host gets its own copy of what a real machine keeps
in /etc: its `/etc/ssh` (host key, sshd_config, authorized_keys, the client key and known hosts
its libvirtd uses for peer-to-peer migrations) is a bind mount of `hI/etc-ssh`, and its TLS files
live in its private `/etc/libvirt/pki` (`hI/etc-libvirt/pki`; Debian has no /etc/pki to mount
over). The controller gets the same treatment: `ctl/etc-ssh` is mounted over /etc/ssh for
commands run with `ulm lab exec`, so its known hosts are its own and root's ~/.ssh is never
touched. Private keys are written 0600 and never printed.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ulm.lab.paths import CONTROLLER, LabPaths, host_ip, host_name
from ulm.lab.system import run

ORG = "ULM lab"
DAYS = "30"
PKI = "/etc/libvirt/pki"  # as a lab host sees it (its own etc-libvirt)

SSHD_CONFIG = """# sshd of lab host {name}: keys only, root by key only (libvirt's ssh transport)
ListenAddress {ip}
Port 22
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
AuthorizedKeysFile /etc/ssh/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
X11Forwarding no
LogLevel VERBOSE
"""

# The client side, for the host's own libvirtd (peer-to-peer migration) and for the controller.
# Host keys come only from the global file written here; nothing is learnt or asked for.
SSH_CONFIG = """# ssh client of {name}
Host *
    GlobalKnownHostsFile /etc/ssh/ssh_known_hosts
    UserKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    BatchMode yes
    IdentitiesOnly yes
    ConnectTimeout 5
{identity}"""

LIBVIRTD_TLS = """tls_port = "16514"
auth_tls = "none"
ca_file = "{pki}/cacert.pem"
cert_file = "{pki}/servercert.pem"
key_file = "{pki}/serverkey.pem"
"""

QEMU_TLS = """migrate_tls_x509_cert_dir = "{pki}/qemu"
migrate_tls_x509_verify = 1
"""


@dataclass(frozen=True)
class Ca:
    """A certificate authority on disk: its certificate and private key."""

    cert: Path
    key: Path


def controller_dir(paths: LabPaths) -> Path:
    return paths.root / "ctl"


def controller_key(paths: LabPaths) -> Path:
    """The controller's ssh private key (a URI names it with `keyfile=`)."""
    return controller_dir(paths) / "id_ed25519"


def controller_pki(paths: LabPaths) -> Path:
    """The controller's TLS client files (a URI names the directory with `pkipath=`)."""
    return controller_dir(paths) / "pki"


def controller_etc_ssh(paths: LabPaths) -> Path:
    return controller_dir(paths) / "etc-ssh"


# -- certificates (openssl) ------------------------------------------------------------------

def _private(path: Path) -> None:
    os.chmod(path, 0o600)


def make_ca(where: Path, name: str = f"{ORG} CA") -> Ca:
    where.mkdir(parents=True, exist_ok=True)
    ca = Ca(where / "ca.pem", where / "ca.key")
    run(["openssl", "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(ca.key), "-out", str(ca.cert),
         "-days", DAYS, "-subj", f"/O={ORG}/CN={name}",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    _private(ca.key)
    return ca


def issue(ca: Ca, cn: str, cert: Path, key: Path, server_names: tuple[str, ...] = ()) -> None:
    """A certificate for `cn` signed by `ca`; with `server_names` (IPs or DNS names) it is also
    a server certificate valid for them. libvirt and QEMU check key usage and purpose."""
    purpose = "serverAuth,clientAuth" if server_names else "clientAuth"
    ext = ["basicConstraints=critical,CA:FALSE",
           "keyUsage=critical,digitalSignature,keyEncipherment",
           f"extendedKeyUsage={purpose}"]
    if server_names:
        sans = [f"IP:{n}" if n.replace(".", "").isdigit() else f"DNS:{n}" for n in server_names]
        ext.append("subjectAltName=" + ",".join(sans))
    cert.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        csr, extfile = Path(tmp) / "req.csr", Path(tmp) / "ext.cnf"
        extfile.write_text("\n".join(ext) + "\n")
        run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(csr),
             "-subj", f"/O={ORG}/CN={cn}"])
        _private(key)
        run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey",
             str(ca.key), "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
             "-days", DAYS, "-out", str(cert), "-extfile", str(extfile)])


def client_pki(ca: Ca, cn: str, where: Path, trust: Path | None = None) -> Path:
    """A libvirt client directory (cacert.pem, clientcert.pem, clientkey.pem, as `pkipath=`
    wants it): a certificate for `cn` from `ca`, trusting `trust` (default: `ca` itself)."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "cacert.pem").write_bytes((trust or ca.cert).read_bytes())
    issue(ca, cn, where / "clientcert.pem", where / "clientkey.pem")
    return where


def _host_pki(ca: Ca, i: int, pki: Path) -> None:
    """Server and client certificates for libvirtd and for QEMU's migration stream."""
    names = (host_ip(i), host_name(i))
    qemu = pki / "qemu"
    qemu.mkdir(parents=True, exist_ok=True)
    issue(ca, host_name(i), pki / "servercert.pem", pki / "serverkey.pem", names)
    client_pki(ca, host_name(i), pki)  # its libvirtd as the client of a p2p migration
    # QEMU's file names differ from libvirt's; the same certificates serve both
    for src, dst in (("cacert", "ca-cert"), ("servercert", "server-cert"),
                     ("serverkey", "server-key"), ("clientcert", "client-cert"),
                     ("clientkey", "client-key")):
        (qemu / f"{dst}.pem").write_bytes((pki / f"{src}.pem").read_bytes())
        if "key" in src:
            _private(qemu / f"{dst}.pem")


# -- ssh ---------------------------------------------------------------------------------------

def keygen(key: Path, comment: str) -> str:
    """An ed25519 key pair without passphrase; returns the public line."""
    key.unlink(missing_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)])
    _private(key)
    return key.with_name(key.name + ".pub").read_text().strip()


def known_hosts_line(i: int, public: str) -> str:
    kind, blob = public.split()[:2]
    return f"{host_ip(i)},{host_name(i)} {kind} {blob}"


def _etc_ssh(etc: Path, name: str, identity: str) -> None:
    etc.mkdir(parents=True, exist_ok=True)
    etc.chmod(0o755)  # sshd's StrictModes: no group- or world-writable directory on the path
    line = f"    IdentityFile {identity}\n" if identity else ""
    (etc / "ssh_config").write_text(SSH_CONFIG.format(name=name, identity=line))


# -- the whole set -----------------------------------------------------------------------------

def prepare(paths: LabPaths, n: int) -> None:
    """Keys, certificates and configuration for `n` hosts and the controller."""
    ctl = controller_dir(paths)
    ca = make_ca(ctl / "ca")
    client_pki(ca, CONTROLLER, controller_pki(paths))
    authorized = [keygen(controller_key(paths), f"ulm@{CONTROLLER}")]
    host_keys: dict[int, str] = {}
    for i in range(1, n + 1):
        h = paths.host(i)
        etc = h / "etc-ssh"
        # a p2p migration's ssh runs as root in the source host: its key, its known hosts
        _etc_ssh(etc, host_name(i), "/etc/ssh/id_migrate")
        authorized.append(keygen(etc / "id_migrate", f"libvirtd@{host_name(i)}"))
        host_keys[i] = keygen(etc / "ssh_host_ed25519_key", f"root@{host_name(i)}")
        (etc / "sshd_config").write_text(SSHD_CONFIG.format(name=host_name(i), ip=host_ip(i)))
        _host_pki(ca, i, h / "etc-libvirt" / "pki")
        conf = h / "etc-libvirt"
        with (conf / "libvirtd.conf").open("a") as f:
            f.write(LIBVIRTD_TLS.format(pki=PKI))
        with (conf / "qemu.conf").open("a") as f:
            f.write(QEMU_TLS.format(pki=PKI))
    known = "".join(known_hosts_line(i, k) + "\n" for i, k in host_keys.items())
    _etc_ssh(controller_etc_ssh(paths), CONTROLLER, "")  # the URI names its key (keyfile=)
    for etc in [controller_etc_ssh(paths), *(paths.host(i) / "etc-ssh" for i in host_keys)]:
        (etc / "ssh_known_hosts").write_text(known)
    for i in host_keys:
        auth = paths.host(i) / "etc-ssh" / "authorized_keys"
        auth.write_text("\n".join(authorized) + "\n")
        _private(auth)


def start_lines(h: Path) -> str:
    """What a secure host's start script adds: its own /etc/ssh and a running sshd."""
    return (f"mount --bind {h}/etc-ssh /etc/ssh\n"
            "mkdir -p /run/sshd\n"  # sshd's privilege-separation directory, in the host's /run
            # the log in /run (hI/run): /var is an overlay inside the host
            "/usr/sbin/sshd -f /etc/ssh/sshd_config -E /run/sshd.log\n")


def ssh_uri(paths: LabPaths, i: int, key: Path | None = None) -> str:
    """How the controller reaches host i over ssh (as root, with the controller's key)."""
    return f"qemu+ssh://root@{host_ip(i)}/system?keyfile={key or controller_key(paths)}"


def tls_uri(i: int, pki: Path | str) -> str:
    return f"qemu+tls://{host_ip(i)}/system?pkipath={pki}"


def controller_prefix(paths: LabPaths) -> list[str]:
    """argv that gives a command the controller's own /etc/ssh (a private mount namespace;
    nothing is mounted in the root one). Empty when the lab is not secure."""
    etc = controller_etc_ssh(paths)
    if not (etc / "ssh_known_hosts").exists():
        return []
    return ["unshare", "--mount", "--", "sh", "-c", 'mount --bind "$0" /etc/ssh && exec "$@"',
            str(etc)]
