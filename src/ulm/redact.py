"""Credentials never leave ULM: one place that blanks them out of any text shown to anyone.

Every edge that turns something into text for a person or a file (the CLI's error line, the log
formatter, reprs of configuration, API answers) passes it through `redact`. It knows two shapes:
a URL's userinfo (`scheme://user:PASSWORD@host`) and `key=value` / `key: value` pairs whose key
says it is a secret (password, token, secret, passwd, api_key, authorization). Values that ULM
read from a secret source (password files and environment variables, bearer tokens) are also
registered with `remember`, so that they are blanked wherever they appear, in whatever form.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import quote

MASK = "***"

# scheme://user:password@   (the password may contain anything but '@' and whitespace;
# the last '@' before the host ends it, as URL parsers do)
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/@\s'\"]*)"
                           r":(?P<pw>[^\s'\"]*)@(?=[^@\s'\"]*(?:[\s'\"/?#]|$))")
_KEYED = re.compile(r"(?P<key>\b[\w.\-]*(?:password|passwd|passphrase|secret|token|api[_-]?key"
                    r"|authorization|credential)[\w.\-]*)(?P<sep>\s*[=:]\s*|\"\s*:\s*\"|'\s*:\s*')"
                    r"(?P<q>[\"']?)(?P<val>(?:Bearer\s+|Basic\s+)?[^\s\"',;&}]+)", re.IGNORECASE)

_lock = threading.Lock()
_known: set[str] = set()


def remember(secret: str) -> None:
    """Registers a value read from a secret source, so that `redact` blanks it everywhere."""
    # Very short values would blank ordinary words; such passwords are refused at config time
    # where it matters, and a 1-3 character secret is no secret anyway.
    if len(secret) >= 4:
        with _lock:
            _known.update({secret, quote(secret, safe=""), quote(secret)})


def _forget_all() -> None:
    """For tests only: a fresh registry."""
    with _lock:
        _known.clear()


def redact(text: str) -> str:
    """`text` with every credential it contains replaced by `***`."""
    if not text:
        return text
    out = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    out = _KEYED.sub(_keyed, out)
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in out:
            out = out.replace(secret, MASK)
    return out


def _keyed(m: re.Match[str]) -> str:
    if m["val"] == MASK:
        return m[0]
    return f"{m['key']}{m['sep']}{m['q']}{MASK}"


def redact_url(url: str) -> str:
    """A URL fit to show: its password (and any secret query parameter) blanked."""
    return redact(url)
