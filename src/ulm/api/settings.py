"""`[api]` settings: where the HTTP API listens, who may use it, TLS. Embeddable in `Config`."""

from __future__ import annotations

import enum
import ipaddress
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Role(enum.IntEnum):
    """Ordered: a higher role may do everything a lower one may."""

    viewer = 1
    operator = 2
    admin = 3


class TokenConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=64)]  # shown in logs and outcomes
    role: Annotated[str, Field(pattern="^(viewer|operator|admin)$")]
    # The token itself lives in a file (mode 0600), never in the config: configs get pasted.
    token_file: Annotated[str, Field(min_length=1)]

    @property
    def level(self) -> Role:
        return Role[self.role]


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str = "127.0.0.1:9181"  # loopback by default: exposing it is a decision
    tokens: tuple[TokenConfig, ...] = ()
    tls_cert: str = ""
    tls_key: str = ""
    session_ttl_s: Annotated[float, Field(gt=0)] = 12 * 3600.0  # browser login lifetime

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("listen must be HOST:PORT, e.g. 127.0.0.1:9181")
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            if host != "localhost":
                raise ValueError("listen must name an IP address (or localhost)") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ApiSettings:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key go together")
        names = [t.name for t in self.tokens]
        if len(set(names)) != len(names):
            raise ValueError("token names must be unique")
        return self

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])
