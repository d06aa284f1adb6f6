"""What every power driver raises, and how secrets are kept out of what it says."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import SecretStr

#: A password as given (a plain string, a pydantic SecretStr) or a callable that reads it when
#: needed (e.g. `PowerConfig.secret`, so a rotated password file is picked up on reconnect).
PasswordSource = str | SecretStr | Callable[[], str]


class PowerError(Exception):
    """A power action or state query failed; the message names the host and its BMC, never
    the password."""


def reveal(source: PasswordSource) -> str:
    if isinstance(source, SecretStr):
        return source.get_secret_value()
    if isinstance(source, str):
        return source
    return source()


def redact(text: str, secret: str) -> str:
    """Libraries sometimes echo what they were given; the password never leaves this way."""
    return text.replace(secret, "***") if secret else text


def where(host: str, endpoint: str) -> str:
    """`h1 (BMC 10.0.0.2:623)` or just the endpoint when the host's name is not known."""
    return f"{host} ({endpoint})" if host else endpoint
