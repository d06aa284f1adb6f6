"""`[notify]` in ulm.toml: webhooks and e-mail, each with its filter."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ulm.errors import ConfigError
from ulm.notify.events import KINDS
from ulm.redact import remember

SeverityName = Literal["info", "warning", "error", "critical"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Filter(_Strict):
    kinds: tuple[str, ...] = ()  # empty: every kind
    min_severity: SeverityName = "warning"

    @field_validator("kinds")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown event kind {', '.join(unknown)} "
                             f"(known: {', '.join(KINDS)})")
        return value


class WebhookConfig(Filter):
    url: Annotated[str, Field(min_length=1)]
    secret_file: str = ""  # HMAC-SHA256 key: the receiver checks X-ULM-Signature
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    retries: Annotated[int, Field(ge=0, le=20)] = 5

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    def secret(self) -> bytes:
        return _read_secret(self.secret_file, "secret_file").encode() if self.secret_file \
            else b""


class EmailConfig(Filter):
    smtp_host: Annotated[str, Field(min_length=1)]
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 25
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str = ""
    password_file: str = ""
    sender: Annotated[str, Field(min_length=3, pattern=r"^[^@\s]+@[^@\s]+$")]
    to: Annotated[tuple[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")], ...],
                  Field(min_length=1)]
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    retries: Annotated[int, Field(ge=0, le=20)] = 3

    @model_validator(mode="after")
    def _login(self) -> EmailConfig:
        if bool(self.username) != bool(self.password_file):
            raise ValueError("SMTP login needs both username and password_file")
        return self

    def password(self) -> str:
        return _read_secret(self.password_file, "password_file") if self.password_file else ""


class NotifyConfig(_Strict):
    webhooks: tuple[WebhookConfig, ...] = ()
    email: tuple[EmailConfig, ...] = ()
    queue: Annotated[int, Field(ge=1, le=100000)] = 1000  # events waiting; the oldest go


def _read_secret(path: str, key: str) -> str:
    try:
        value = Path(path).expanduser().read_text().strip()
    except OSError as exc:
        raise ConfigError(f"notify: {key} {path}: cannot read: {exc.strerror}") from None
    remember(value)
    return value
