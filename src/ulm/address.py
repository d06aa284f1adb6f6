"""Network addresses from the user: the one parser for `HOST:PORT` and for host names.

Used at every edge that takes one (`ulm run --metrics`, the config's `munin`, BMC addresses,
the hosts of libvirt and store URLs), so that they all accept and refuse the same things.
"""

from __future__ import annotations

import ipaddress
import re

from ulm.errors import UlmError

# RFC 1123 labels: letters, digits and inner hyphens, at most 63 each, 253 in all.
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def valid_host(text: str) -> bool:
    """A DNS name or an IP literal (IPv6 with or without brackets)."""
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        ipaddress.ip_address(bare)
        return True
    except ValueError:
        pass
    name = text.removesuffix(".")
    return 0 < len(name) <= 253 and all(_LABEL.match(p) for p in name.split("."))


def parse_hostport(text: str, what: str, default_host: str | None = None) -> tuple[str, int]:
    """`host:port`, `[v6]:port`, or `:port` when there is a `default_host`: the host (IPv6
    without brackets) and the port (1-65535). Errors name `what` (an option or a key)."""
    example = "127.0.0.1:9180" if default_host else "host:4949"
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        raise UlmError(f"{what} {text!r} is not HOST:PORT (e.g. {example})")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not _is_v6(host):
            raise UlmError(f"{what} {text!r}: [{host}] is not an IPv6 address")
    elif ":" in host:
        raise UlmError(f"{what} {text!r}: write an IPv6 address in brackets, [::1]:9180")
    if not host:
        if default_host is None:
            raise UlmError(f"{what} {text!r} has no host (e.g. {example})")
        host = default_host
    if not (_is_v6(host) or valid_host(host)):
        raise UlmError(f"{what} {text!r}: {host!r} is not a host name or IP address")
    if not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise UlmError(f"{what} {text!r}: the port must be a number from 1 to 65535")
    return host, int(port)


def _is_v6(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv6Address)
    except ValueError:
        return False
