"""What failed when ULM could not reach a host's libvirt, said in one line.

libvirt passes the transport's own complaint through (ssh's stderr, GnuTLS' verdict), often on
several lines and in the transport's words ("Cannot recv data: ... Permission denied
(publickey).: Connection reset by peer"). An admin needs the transport, the endpoint and which
of the few usual things is wrong: the key, the host key, a certificate, a file, the listener.
The endpoint is shown without its query (key and certificate *paths* are no secret, but they
make the line long) and through `redact`, so a password in a URI never shows.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ulm.redact import redact

# (pattern in libvirt's message, what it means); the first match wins.
_SSH = (
    (r"REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed",
     "the host key differs from the one in known_hosts (a reinstalled host or a man in the "
     "middle): check it, then update known_hosts"),
    (r"host key is known|Host key verification failed",
     "the host key is not in known_hosts (add it; ULM never accepts unknown host keys)"),
    (r"Permission denied \(publickey",
     "the key was refused (not in the host's authorized_keys, wrong user, or wrong keyfile=)"),
    (r"(?i)identity file .* not accessible|Load key .*: (No such file|invalid format)",
     "the private key named by keyfile= cannot be read"),
    (r"Could not resolve hostname", "the host name does not resolve"),
    (r"Connection refused", "connection refused: no sshd listening on that port"),
    (r"No route to host|Network is unreachable|timed out",
     "the host is unreachable (network, or powered off)"),
)
_TLS = (
    (r"Our own certificate .* failed validation",
     "our client certificate is not signed by the CA in our cacert.pem"),
    (r"Cannot (read|access) (CA )?certificate|Cannot (read|access) .*key",
     "a certificate or key file is missing or unreadable: {file}"),
    (r"(?i)does not match (the )?(host ?name|hostname)|not .*for hostname",
     "the host's certificate is not issued for this host name or address"),
    (r"(?i)expired|not yet activated", "a certificate has expired or is not valid yet"),
    (r"(?i)hasn't got a known issuer|not trusted|Failed to verify peer|signer not found",
     "the host's certificate is not trusted (not signed by the CA in our cacert.pem)"),
    (r"(?i)TLS confirmation|handshake|alert|reset by peer|client socket is closed|End of file",
     "the host ended the TLS handshake: it does not accept our client certificate "
     "(another CA, or not in its tls_allowed_dn_list)"),
    (r"Connection refused", "connection refused: no TLS listener (libvirtd listen_tls, "
                            "port 16514)"),
    (r"No route to host|Network is unreachable|timed out",
     "the host is unreachable (network, or powered off)"),
)
_OTHER = (
    (r"Connection refused", "connection refused: libvirtd is not listening"),
    (r"No route to host|Network is unreachable|timed out",
     "the host is unreachable (network, or powered off)"),
    (r"(?i)authentication failed|authentication unavailable|SASL",
     "authentication failed (SASL/polkit: check the credentials libvirt is configured for)"),
)
_FILE = re.compile(r"'([^']+)'")


def endpoint(uri: str) -> str:
    """`scheme://user@host:port` of a libvirt URI (no path or query), safe to show."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "a malformed URI"
    if not parts.netloc:
        return redact(f"{parts.scheme}://{parts.path}")
    host = parts.hostname or ""
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{user}{host}{port}"


def transport(uri: str) -> str:
    """ssh, tls, tcp, unix, ... (plain `qemu://host/` is TLS, libvirt's default transport)."""
    scheme = urlsplit(uri).scheme
    if "+" in scheme:
        return scheme.split("+", 1)[1]
    return "tls" if urlsplit(uri).netloc else "local"


def one_line(text: str, limit: int = 240) -> str:
    flat = " ".join(redact(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def describe(uri: str, message: str) -> str:
    """One line: how ULM tried to reach the host, and what failed."""
    kind = transport(uri)
    table = _SSH if kind.startswith("ssh") or kind.startswith("libssh") else (
        _TLS if kind == "tls" else _OTHER)
    what = ""
    for pattern, meaning in table:
        if re.search(pattern, message):
            found = _FILE.search(message)
            what = meaning.format(file=found.group(1) if found else "?")
            break
    where = f"cannot connect over {kind} to {endpoint(uri)}"
    if not what:
        return f"{where}: {one_line(message)}"
    # The transport's own last words, short: ssh's banner is many lines of '@'.
    last = [s for s in re.split(r"[\r\n]+", message) if s.strip()][-1:] or [""]
    return f"{where}: {what} (libvirt: {one_line(last[0], 160)})"
