"""The shapes of the URLs in `ulm.toml`: libvirt connection URIs, the store's URL, BMC URLs.

Checked when the config is read, so that `nonsense://???` is a config error naming the key and
the host, not a libvirt error in the middle of the first round. Every message shows the URL
with its password blanked.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ulm.address import valid_host
from ulm.errors import UlmError
from ulm.redact import redact_url

#: libvirt drivers ULM can manage (KVM), plus libvirt's in-memory test driver
LIBVIRT_DRIVERS = ("qemu", "test")
#: libvirt's remote transports (`qemu+ssh://...`)
LIBVIRT_TRANSPORTS = ("tcp", "tls", "ssh", "unix", "libssh", "libssh2", "ext")
_SCHEME = re.compile(r"^(?P<driver>[a-z0-9]+)(?:\+(?P<transport>[a-z0-9]+))?$")
_QEMU_PATHS = ("/system", "/session")
STORE_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")


def check_libvirt_uri(uri: str, what: str) -> None:
    """`driver[+transport]://[user@][host][:port]/path[?params]`, as libvirt reads it."""
    shown = redact_url(uri)
    example = "e.g. qemu+ssh://root@hv1/system or qemu+tcp://hv1/system"
    try:
        parts = urlsplit(uri)
        port = parts.port  # raises on a port that is not a number from 0 to 65535
    except ValueError as exc:
        raise UlmError(f"{what} {shown!r} is not a libvirt URI ({exc}): {example}") from None
    m = _SCHEME.match(parts.scheme)
    if "://" not in uri or m is None or m["driver"] not in LIBVIRT_DRIVERS:
        raise UlmError(f"{what} {shown!r} is not a libvirt URI: the scheme must be one of "
                       f"{', '.join(LIBVIRT_DRIVERS)}, with +transport "
                       f"({', '.join(LIBVIRT_TRANSPORTS)}); {example}")
    if m["transport"] is not None and m["transport"] not in LIBVIRT_TRANSPORTS:
        raise UlmError(f"{what} {shown!r}: unknown libvirt transport {m['transport']!r} "
                       f"(one of {', '.join(LIBVIRT_TRANSPORTS)})")
    if parts.hostname and not valid_host(parts.hostname):
        raise UlmError(f"{what} {shown!r}: {parts.hostname!r} is not a host name or IP address")
    if port == 0:
        raise UlmError(f"{what} {shown!r}: port 0")
    if m["driver"] == "qemu" and parts.path not in _QEMU_PATHS:
        raise UlmError(f"{what} {shown!r}: a qemu URI ends in /system (or /session), "
                       f"not {parts.path or 'nothing'!r}")
    if m["driver"] == "test" and not parts.path.startswith("/"):
        raise UlmError(f"{what} {shown!r}: a test URI names its setup, e.g. test:///default")


def check_store_url(url: str) -> None:
    """SQLite (`sqlite:////var/lib/ulm/ulm.db`) or PostgreSQL (`postgresql+psycopg://...`)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    shown = redact_url(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise UlmError(f"{shown!r} is not a database URL: use sqlite:////var/lib/ulm/ulm.db "
                       "or postgresql+psycopg://user@host/db") from None
    if parsed.drivername not in STORE_DRIVERS:
        raise UlmError(f"{shown!r}: the store is SQLite or PostgreSQL "
                       f"({', '.join(STORE_DRIVERS)}), not {parsed.drivername!r}")
    if not parsed.database or parsed.database == ":memory:":
        raise UlmError(f"{shown!r} names no database file or database (an in-memory store "
                       "would forget everything between commands)")
    if parsed.host and not valid_host(parsed.host):
        raise UlmError(f"{shown!r}: {parsed.host!r} is not a host name or IP address")
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise UlmError(f"{shown!r}: the port must be a number from 1 to 65535")


def check_web_url(url: str, what: str) -> None:
    """An `https://host[:port]` (or http) URL, e.g. a Redfish BMC."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UlmError(f"{what} {shown!r} is not a URL ({exc})") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UlmError(f"{what} {shown!r} is not an http(s) URL, e.g. https://bmc1.example")
    if not valid_host(parts.hostname) or port == 0:
        raise UlmError(f"{what} {shown!r}: {parts.hostname!r} is not a host name or IP address")
