"""Notifications to a real HTTP receiver and a real SMTP server (aiosmtpd), both on loopback."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests import secrets
from tests.collect.prom_fixtures import free_port
from tests.notify.conftest import Receiver
from ulm.notify import Dispatcher, Event, Kind, NotifyConfig, Severity, build
from ulm.notify.settings import EmailConfig, WebhookConfig
from ulm.notify.targets import Email, Webhook, signature


def _event(kind: Kind = Kind.migration_failed, sev: Severity = Severity.error) -> Event:
    return Event(kind, sev, host="labh1", vm="web1", plan_id="p1",
                 detail=f"deadline; store postgresql://ulm:{secrets.STORE_PW}@db/ulm",
                 data={"src": "labh1", "dst": "labh2"})


def test_webhook_is_signed_retried_and_never_carries_a_secret(receiver: Receiver,
                                                              tmp_path: Path) -> None:
    key = tmp_path / "hook.key"
    key.write_text(secrets.TOKEN)
    receiver.fail_next = 2  # the receiver is down for two attempts
    cfg = WebhookConfig(url=receiver.url, secret_file=str(key), retries=3)
    d = Dispatcher([Webhook(cfg)], backoff_s=0.05)
    d.publish(_event())
    assert d.drain(20)
    d.close()
    assert d.counts.delivered == 1 and d.counts.failed == 0
    (headers, body), = receiver.got
    assert headers["X-ULM-Signature"] == signature(secrets.TOKEN.encode(), body)
    assert headers["X-ULM-Event"] == "migration_failed"
    doc = json.loads(body)
    assert doc["kind"] == "migration_failed" and doc["severity"] == "error"
    assert doc["data"] == {"src": "labh1", "dst": "labh2"}
    assert doc["vm"] == "web1" and doc["plan_id"] == "p1"
    assert doc["text"].startswith("migration web1 labh1 -> labh2 failed: deadline")
    assert secrets.STORE_PW not in body.decode() and secrets.TOKEN not in body.decode()


def test_filters_by_kind_and_severity(receiver: Receiver) -> None:
    cfg = WebhookConfig(url=receiver.url, kinds=("drain_blocked", "migration_failed"),
                        min_severity="error")
    d = Dispatcher([Webhook(cfg)], backoff_s=0.05)
    d.publish(_event(Kind.migration_failed, Severity.warning))  # too mild
    d.publish(_event(Kind.migration_done, Severity.error))  # another kind
    d.publish(_event(Kind.drain_blocked, Severity.critical))
    assert d.drain(20)
    d.close()
    assert [json.loads(b)["kind"] for _, b in receiver.got] == ["drain_blocked"]


def test_a_refusing_receiver_is_not_hammered(receiver: Receiver) -> None:
    receiver.status = 403  # refuses for good: one attempt, then given up and counted
    d = Dispatcher([Webhook(WebhookConfig(url=receiver.url, retries=5))], backoff_s=0.05)
    d.publish(_event())
    assert d.drain(20)
    d.close()
    assert len(receiver.got) == 1 and d.counts.failed == 1 and d.counts.delivered == 0


def test_a_dead_receiver_never_blocks_publish_and_the_queue_is_bounded() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens
    d = Dispatcher([Webhook(WebhookConfig(url=url, retries=1, timeout_s=1))], queue=3,
                   backoff_s=0.05)
    for _ in range(20):
        d.publish(_event())  # returns at once although nothing can be delivered
    assert d.drain(30)
    d.close()
    assert d.counts.delivered == 0
    assert d.counts.dropped >= 15  # at most 3 waited (plus the one in delivery)
    assert d.counts.failed + d.counts.dropped == 20


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


def _auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.password == secrets.BMC_PW.encode()
    return AuthResult(success=ok)


def test_email_through_a_real_smtp_server(tmp_path: Path) -> None:
    inbox = _Inbox()
    ctl = Controller(inbox, hostname="127.0.0.1", port=free_port(), authenticator=_auth,
                     auth_require_tls=False)
    ctl.start()
    try:
        pw = tmp_path / "smtp.pw"
        pw.write_text(secrets.BMC_PW)
        cfg = NotifyConfig(email=(EmailConfig(
            smtp_host="127.0.0.1", smtp_port=ctl.port, security="none", username="ulm",
            password_file=str(pw), sender="ulm@cluster.example", to=("ops@cluster.example",),
            retries=0),))
        d = build(cfg)
        d.publish(_event(Kind.drain_blocked, Severity.error))
        assert d.drain(20)
        d.close()
        (msg,) = inbox.messages
        text = msg.content.decode()
        assert msg.rcpt_tos == ["ops@cluster.example"]
        assert "drain_blocked" in text and "web1" in text
        assert secrets.STORE_PW not in text and secrets.BMC_PW not in text
        pw.write_text("wrong-password")  # a refused login is reported, not retried forever
        d = Dispatcher([Email(cfg.email[0])])
        d.publish(_event())
        assert d.drain(20)
        d.close()
        assert d.counts.failed == 1 and len(inbox.messages) == 1
    finally:
        ctl.stop()


def test_a_filter_naming_an_unknown_kind_is_refused_and_rounds_never_notify() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown event kind migration_faild"):
        WebhookConfig(url="http://127.0.0.1:1/hook", kinds=("migration_faild",))
    with pytest.raises(ValidationError, match="unknown event kind round"):
        WebhookConfig(url="http://127.0.0.1:1/hook", kinds=("round",))
    from ulm.notify.targets import wanted

    everything = WebhookConfig(url="http://127.0.0.1:1/hook", min_severity="info")
    assert wanted(everything, Event(Kind.plan_made, Severity.info))
    assert not wanted(everything, Event(Kind.round, Severity.debug))  # the stream's only


def test_outcomes_become_events_of_the_right_kind_and_severity() -> None:
    from ulm.execute.types import Cause, Outcome, Status
    from ulm.model import Move, PowerOff, PowerOn
    from ulm.notify.make import of_action, of_condition

    m = Move("web1", "h1", "h2", "overload", 512.0)
    aborted = of_action("p1", 1, m, Outcome(m, Status.FAILED, "deadline", 10.0, 310.0,
                                            Cause.DEADLINE, where=("h1",)))
    assert (aborted.kind, aborted.severity) == (Kind.migration_aborted, Severity.error)
    assert aborted.data["duration_s"] == 300.0
    assert aborted.text() == "migration web1 h1 -> h2 aborted in 300.0 s: deadline"
    twice = of_action("p1", 1, m, Outcome(m, Status.FAILED, "x", 0, 1, Cause.MISPLACED,
                                          where=("h1", "h2")))
    assert (twice.kind, twice.severity) == (Kind.migration_failed, Severity.critical)
    wake = of_action("p2", 1, PowerOn("h3", "demand"),
                     Outcome(PowerOn("h3", "demand"), Status.FAILED, "no answer", 0, 5,
                             Cause.POWER))
    assert (wake.kind, wake.host, wake.severity) == (Kind.wake_failed, "h3", Severity.error)
    off = of_action("p3", 2, PowerOff("h2", "empty"), None)
    assert off.kind is Kind.power_started and off.text() == "powering off h2"
    began = of_condition("store", "store x: disk full", True, logging.ERROR)
    ended = of_condition("store", "store x takes writes again", False, logging.INFO)
    assert (began.kind, began.severity, began.ended) == (Kind.daemon_degraded,
                                                         Severity.error, False)
    assert (ended.kind, ended.severity, ended.ended) == (Kind.daemon_degraded,
                                                         Severity.info, True)
    stale = of_condition("stale-host:h2", "h2: old figures", True, logging.WARNING)
    assert (stale.kind, stale.host) == (Kind.host_stale, "h2")


def test_a_booking_whose_drain_cannot_fit_becomes_a_drain_blocked_warning() -> None:
    from types import SimpleNamespace

    from ulm.notify.make import of_bookings

    blocked = SimpleNamespace(id=7, host="h2", status="blocked",
                              detail="the drain of h2 does not fit: 3 GiB short")
    booked = SimpleNamespace(id=8, host="h3", status="booked", detail="fits")
    got = of_bookings({8: ("booked", "fits")}, [blocked, booked], now=5.0)
    assert [(e.kind, e.severity, e.host) for e in got] == \
        [(Kind.drain_blocked, Severity.warning, "h2")]  # the unchanged booking says nothing
    assert got[0].text().startswith("drain cannot fit")
    assert got[0].data["booking"] == 7 and "3 GiB short" in got[0].detail
