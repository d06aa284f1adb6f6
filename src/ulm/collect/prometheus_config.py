"""`[collect.prometheus]`: where ULM's Prometheus is, how to log in, which PromQL per figure.

Kept apart from the source itself so that loading a config does not import an HTTP client.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ulm.errors import ConfigError
from ulm.redact import remember

FIGURES = ("host_cpu", "host_cores", "host_mem_total", "host_mem_used", "vm_cpu", "vm_vcpus",
           "vm_mem", "vm_mem_used", "up")


class PrometheusConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    url: Annotated[str, Field(min_length=1)]
    host_label: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = "instance"
    vm_label: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = "domain"
    rate_s: Annotated[float, Field(gt=0, le=3600)] = 120.0  # the window of rate() figures
    queries: dict[str, str] = {}
    bearer_token_file: str = ""
    username: str = ""
    password_file: str = ""
    ca_file: str = ""
    verify_tls: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        if "@" in value.split("//", 1)[1].split("/", 1)[0]:
            raise ValueError("must not contain credentials: use username + password_file "
                             "or bearer_token_file")
        return value

    @field_validator("queries")
    @classmethod
    def _known(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(FIGURES))
        if unknown:
            raise ValueError(f"unknown figure {', '.join(unknown)} (known: {', '.join(FIGURES)})")
        empty = sorted(k for k, v in value.items() if not v.strip())
        if empty:
            raise ValueError(f"empty query for {', '.join(empty)}")
        return value

    @model_validator(mode="after")
    def _one_login(self) -> PrometheusConfig:
        if self.bearer_token_file and self.username:
            raise ValueError("give bearer_token_file or username + password_file, not both")
        if bool(self.username) != bool(self.password_file):
            raise ValueError("basic auth needs both username and password_file")
        return self

    def token(self) -> str:
        return _secret(self.bearer_token_file, "bearer_token_file")

    def password(self) -> str:
        return _secret(self.password_file, "password_file")


def _secret(path: str, key: str) -> str:
    """A secret read from its file when the source starts (and remembered, so that it is
    blanked from any text ULM shows)."""
    if not path:
        return ""
    try:
        value = Path(os.path.expanduser(path)).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"collect.prometheus.{key}: cannot read {path}: "
                          f"{exc.strerror}") from None
    remember(value)
    return value
