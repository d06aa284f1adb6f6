"""Where events go: an HTTP webhook (JSON, HMAC-signed) or an SMTP server. Each `send` either
delivers or raises `DeliveryError`; retrying is the dispatcher's business."""

from __future__ import annotations

import hashlib
import hmac
import smtplib
import ssl
from email.message import EmailMessage
from typing import Protocol

import httpx

from ulm.jsonout import dumps
from ulm.notify.events import Event, Severity
from ulm.notify.settings import EmailConfig, Filter, WebhookConfig
from ulm.redact import redact


class DeliveryError(Exception):
    """The target did not take the event; `retry` False when trying again cannot help."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(redact(message))
        self.retry = retry


class Target(Protocol):
    name: str
    retries: int

    def wants(self, event: Event) -> bool: ...

    def send(self, event: Event) -> None: ...


def wanted(f: Filter, event: Event) -> bool:
    return event.severity >= Severity[f.min_severity] and (not f.kinds or event.kind in f.kinds)


def signature(secret: bytes, body: bytes) -> str:
    """What a receiver recomputes to know the event came from this ULM (GitHub's scheme)."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class Webhook:
    def __init__(self, cfg: WebhookConfig) -> None:
        self.cfg = cfg
        self.name = f"webhook {redact(cfg.url)}"
        self.retries = cfg.retries
        self._secret = cfg.secret()
        self._http = httpx.Client(timeout=cfg.timeout_s, follow_redirects=False,
                                  trust_env=False)

    def wants(self, event: Event) -> bool:
        return wanted(self.cfg, event)

    def send(self, event: Event) -> None:
        body = dumps(event.to_dict(), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "ulm",
                   "X-ULM-Event": event.kind.value}
        if self._secret:
            headers["X-ULM-Signature"] = signature(self._secret, body)
        try:
            r = self._http.post(self.cfg.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{self.name}: {type(exc).__name__}: {exc}") from None
        if r.status_code >= 300:
            # 4xx other than 408/429 means the receiver refuses this event: do not insist
            retry = r.status_code >= 500 or r.status_code in (408, 429)
            raise DeliveryError(f"{self.name}: HTTP {r.status_code}", retry=retry)

    def close(self) -> None:
        self._http.close()


class Email:
    def __init__(self, cfg: EmailConfig) -> None:
        self.cfg = cfg
        self.name = f"e-mail via {cfg.smtp_host}:{cfg.smtp_port}"
        self.retries = cfg.retries
        self._password = cfg.password()

    def wants(self, event: Event) -> bool:
        return wanted(self.cfg, event)

    def send(self, event: Event) -> None:
        d = event.to_dict()
        msg = EmailMessage()
        msg["Subject"] = f"[ulm] {d['severity']}: {d['text']}"[:200]
        msg["From"] = self.cfg.sender
        msg["To"] = ", ".join(self.cfg.to)
        about = {k: d[k] for k in ("host", "vm", "plan_id") if d[k]}
        details = "\n".join(f"{k}: {v}" for k, v in sorted({**about, **d["data"]}.items()))
        msg.set_content(f"{d['text']}\n\nkind: {d['kind']}\nseverity: {d['severity']}\n"
                        f"{details}\n")
        c = self.cfg
        try:
            smtp: smtplib.SMTP
            if c.security == "tls":
                smtp = smtplib.SMTP_SSL(c.smtp_host, c.smtp_port, timeout=c.timeout_s,
                                        context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(c.smtp_host, c.smtp_port, timeout=c.timeout_s)
            with smtp:
                if c.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if c.username:
                    smtp.login(c.username, self._password)
                smtp.send_message(msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"{self.name}: login refused ({exc.smtp_code})",
                                retry=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{self.name}: {type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        pass
