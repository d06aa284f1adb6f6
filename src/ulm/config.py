"""The daemon's configuration file (`ulm.toml`): which hosts, how to reach them, where to store.

Same treatment as the policy: pydantic, unknown keys rejected, one-line errors naming the file,
the key and the line. `ulm lab config` prints one for the local lab.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ulm.address import parse_hostport, valid_host
from ulm.api.settings import ApiSettings
from ulm.collect.prometheus_config import PrometheusConfig
from ulm.config_urls import check_libvirt_uri, check_store_url, check_web_url
from ulm.errors import ConfigError, UlmError
from ulm.model import PowerCurve
from ulm.notify.settings import NotifyConfig
from ulm.redact import redact, remember
from ulm.tomlfile import load_model

DAY_S = 86400.0
YEAR_S = 365 * DAY_S


class _Strict(BaseModel):
    # allow_inf_nan: TOML has `nan` and `inf`; no setting of ULM means either.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # A URL or a command line may carry a credential: reprs show it blanked.
        for key, value in super().__repr_args__():
            yield key, redact(value) if isinstance(value, str) else value


def _checked(fn: Any, *args: Any) -> Any:
    """Runs a shared checker; its `UlmError` becomes the validation error of the key."""
    try:
        return fn(*args)
    except UlmError as exc:
        raise ValueError(str(exc)) from None


class StoreConfig(_Strict):
    url: str = "sqlite:////var/lib/ulm/ulm.db"  # or postgresql+psycopg://user@host/db

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        _checked(check_store_url, value)
        return value


class GuardConfig(_Strict):
    """[collect.guard]: how far beyond physics a host's figures may go before the host is
    quarantined (`ulm.collect.guard`); fractions, except the jump, a factor."""

    enabled: bool = True
    cpu_tolerance: Annotated[float, Field(ge=0, le=10)] = 0.10
    mem_tolerance: Annotated[float, Field(ge=0, le=10)] = 0.05
    capacity_jump: Annotated[float, Field(gt=1, le=1000)] = 2.0


class CollectConfig(_Strict):
    interval_s: Annotated[float, Field(gt=0, le=DAY_S)] = 60.0
    #: host (and, with prometheus, VM) CPU/memory figures
    source: Literal["libvirt", "munin", "prometheus"] = "libvirt"
    window: Annotated[int, Field(ge=1, le=1000)] = 30  # samples per VM the scheduler sees
    stale_after_s: Annotated[float, Field(gt=0, le=7 * DAY_S)] | None = None  # default: 3 x
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0  # per host and call
    prometheus: PrometheusConfig | None = None  # [collect.prometheus], for that source
    raw_keep_s: Annotated[float, Field(gt=0, le=YEAR_S)] = DAY_S  # raw samples kept this long
    bucket_s: Annotated[float, Field(gt=0, le=7 * DAY_S)] = 3600.0  # ... then averaged ...
    keep_s: Annotated[float, Field(gt=0, le=10 * YEAR_S)] = 90 * DAY_S  # ... and kept this long
    #: how often the BMCs' power meters are read, where a BMC has one (0 = never)
    power_interval_s: Annotated[float, Field(ge=0, le=DAY_S)] = 300.0
    guard: GuardConfig = GuardConfig()  # [collect.guard]: the bogus-metrics guard

    @model_validator(mode="after")
    def _prometheus(self) -> CollectConfig:
        if self.source == "prometheus" and self.prometheus is None:
            raise ValueError('source "prometheus" needs [collect.prometheus] with its url')
        if self.source != "prometheus" and self.prometheus is not None:
            # given but not used would be silently wrong: say which one is meant
            raise ValueError(f'[collect.prometheus] is given but source is "{self.source}": '
                             'set source = "prometheus" or remove the table')
        return self

    @property
    def stale_s(self) -> float:
        return self.stale_after_s if self.stale_after_s is not None else 3 * self.interval_s


class ExecutorConfig(_Strict):
    #: a migration running longer is aborted
    deadline_s: Annotated[float, Field(gt=0, le=DAY_S)] = 600.0
    bandwidth_mib_s: Annotated[float, Field(ge=0, le=1e6)] = 0.0  # 0: unlimited; 1e6 = 1 TiB/s
    auto_converge: bool = True
    max_concurrent: Annotated[int, Field(ge=1, le=1000)] = 2  # migrations at once, cluster-wide
    max_per_host: Annotated[int, Field(ge=1, le=100)] = 1  # migrations at once touching a host
    poll_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    power_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 300.0  # a boot must end by then
    power_stagger_s: Annotated[float, Field(ge=0, le=600)] = 10.0  # between hosts switched
    shutdown_grace_s: Annotated[float, Field(ge=0)] = 30.0  # SIGTERM: then abort migrations
    #: run enforced plans in the executor's threads beside the rounds (false: inside the
    #: round, which then waits for every migration of its plan)
    background: bool = True


class HaConfig(_Strict):
    """[ha]: two controllers on one (PostgreSQL) store; one leads, the other waits."""

    standby: bool = False  # another daemon leads: wait to take over (`ulm run --standby`)
    #: the leader's lease, renewed every quarter of it: a standby takes over at most
    #: lease_s + poll_s after the leader's last renewal
    lease_s: Annotated[float, Field(ge=4, le=600)] = 20.0
    poll_s: Annotated[float, Field(gt=0, le=60)] = 2.0  # how often a standby looks

    @model_validator(mode="after")
    def _poll(self) -> HaConfig:
        if self.poll_s > self.lease_s / 2:
            raise ValueError(f"poll_s ({self.poll_s:g}) must be at most half of lease_s "
                             f"({self.lease_s:g})")
        return self


class PowerModelConfig(_Strict):
    """A host type's power draw: `watts` at evenly spaced CPU points (SPECpower: 11 points
    for 0 %, 10 %, ... 100 %), or just `idle_w` and `max_w` (linear)."""

    # 100 kW: far above any one server, far below a typo's 1e9
    watts: tuple[Annotated[float, Field(ge=0, le=1e5)], ...] = ()
    idle_w: Annotated[float, Field(ge=0, le=1e5)] | None = None
    max_w: Annotated[float, Field(ge=0, le=1e5)] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> PowerModelConfig:
        if bool(self.watts) == (self.idle_w is not None or self.max_w is not None):
            raise ValueError("give either watts = [...] or idle_w and max_w")
        if self.watts and len(self.watts) < 2:
            raise ValueError("watts needs at least 2 points")
        if not self.watts and (self.idle_w is None or self.max_w is None):
            raise ValueError("give both idle_w and max_w")
        if self.idle_w is not None and self.max_w is not None and self.idle_w > self.max_w:
            raise ValueError(f"idle_w ({self.idle_w:g}) is above max_w ({self.max_w:g})")
        if len(self.watts) > 1001:
            raise ValueError("watts has more than 1001 points")
        return self

    def curve(self, name: str) -> PowerCurve:
        if self.watts:
            return PowerCurve(name, self.watts)
        assert self.idle_w is not None and self.max_w is not None
        return PowerCurve.linear(name, self.idle_w, self.max_w)


class PowerConfig(_Strict):
    """How ULM switches a host: `ipmi` (on, off, state), `redfish` (the same over HTTPS),
    `wol` (wake only; state = does the hypervisor answer), `ipmi+wol` (wake by Wake-on-LAN,
    off and state over IPMI), `ssh` (off only), `wol+ssh` (wake by WoL, off over ssh)."""

    driver: Literal["ipmi", "redfish", "wol", "ipmi+wol", "ssh", "wol+ssh"]
    address: str = ""  # the BMC (redfish: its URL, https://bmc.example)
    system: str = ""  # redfish: the system's id (default: the BMC's first system)
    verify_tls: bool = True
    port: Annotated[int, Field(ge=1, le=65535)] = 623
    username: str = ""
    password: SecretStr | None = None  # discouraged: prefer password_file or password_env
    password_file: str = ""
    password_env: str = ""
    mac: str = ""  # Wake-on-LAN
    broadcast: str = "255.255.255.255"
    interface: str = ""
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    ssh_port: Annotated[int, Field(ge=1, le=65535)] = 22
    key_file: str = ""  # ssh: the private key
    command: str = "systemctl poweroff"  # ssh: what powers the host off
    known_hosts: str = ""  # ssh: host keys to trust
    host_key_checking: Literal["yes", "accept-new"] = "yes"  # ssh: never "no"
    soft_off: bool = False  # ipmi/redfish: ask the OS to shut down instead of a hard off
    power_sensor: str = ""  # ipmi: the BMC sensor that meters watts ("" = the first in W)

    @field_validator("password", mode="before")
    @classmethod
    def _password_is_text(cls, value: object) -> object:
        # pydantic's own message would quote the value: a numeric password would be shown.
        if value is not None and not isinstance(value, str | SecretStr):
            raise ValueError("password must be a string (in quotes)")
        return value

    @field_validator("broadcast")
    @classmethod
    def _broadcast(cls, value: str) -> str:
        import ipaddress

        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError(f"broadcast {value!r} is not an IPv4 address") from None
        return value

    @field_validator("mac")
    @classmethod
    def _mac(cls, value: str) -> str:
        if value:
            from ulm.power.wol import parse_mac  # one definition of a valid MAC

            try:
                parse_mac(value)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _complete(self) -> PowerConfig:
        given = [k for k in ("password", "password_file", "password_env") if getattr(self, k)]
        if len(given) > 1:
            raise ValueError(f"give only one of password_file, password_env, password "
                             f"(got {', '.join(given)})")
        if "ssh" in self.driver and not self.address:
            raise ValueError("ssh needs address (the host to log in to)")
        if "ipmi" in self.driver or self.driver == "redfish":
            if not self.address or not self.username:
                raise ValueError(f"{self.driver} needs address and username")
            if not (self.password or self.password_file or self.password_env):
                raise ValueError(f"{self.driver} needs password_file, password_env or "
                                 "password")
        if "wol" in self.driver and not self.mac:
            raise ValueError("wol needs mac")
        if self.driver == "redfish":
            _checked(check_web_url, self.address, "address")
        elif self.address and not valid_host(self.address):
            raise ValueError(f"address {redact(self.address)!r} is not a host name or IP "
                             "address")
        return self

    def secret(self) -> str:
        """The BMC password, read when needed (never kept in logs or reprs), and remembered
        by `ulm.redact` so that no message can show it, whatever quotes it."""
        value = self._read_secret()
        remember(value)
        return value

    def _read_secret(self) -> str:
        if self.password_file:
            try:
                return Path(self.password_file).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"cannot read password_file {self.password_file}: "
                                  f"{exc.strerror}") from None
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(f"password_env {self.password_env} is not set")
            return value
        return self.password.get_secret_value() if self.password else ""


class HostConfig(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=253)]
    libvirt_uri: Annotated[str, Field(min_length=1)]
    munin: str = ""  # host:port of its munin-node
    migration_uri: str = ""  # where the source's libvirtd reaches this host (default: uri)
    power_curve: str = ""
    labels: dict[str, str] = {}
    power: PowerConfig | None = None
    #: the value of [collect.prometheus] host_label that names this host (default: its name)
    prometheus: str = ""

    @field_validator("libvirt_uri", "migration_uri")
    @classmethod
    def _uri(cls, value: str, info: ValidationInfo) -> str:
        if value:
            name = info.data.get("name", "?")  # validated before: it is the first field
            _checked(check_libvirt_uri, value, f"host {name}: {info.field_name}")
        return value

    @field_validator("munin")
    @classmethod
    def _munin(cls, value: str, info: ValidationInfo) -> str:
        if not value:
            return value
        host, port = _checked(parse_hostport, value, f"host {info.data.get('name', '?')}: munin")
        return f"{host}:{port}"  # the form the munin client reads (IPv6 without brackets)


class Config(_Strict):
    store: StoreConfig = StoreConfig()
    collect: CollectConfig = CollectConfig()
    executor: ExecutorConfig = ExecutorConfig()
    ha: HaConfig = HaConfig()
    policy: str = "seed"  # a policy file (relative to this file) or a built-in name
    #: Glob patterns of VM names ULM may move; a VM matching none is never touched.
    manage: tuple[str, ...] = ("*",)
    hosts: Annotated[tuple[HostConfig, ...], Field(min_length=1)]
    power_models: dict[str, PowerModelConfig] = {}
    notify: NotifyConfig = NotifyConfig()
    api: ApiSettings | None = None  # [api]: the HTTP API and dashboard (or ulm run --http)
    source_path: str = ""  # where this config was read from (filled by the loader)

    @model_validator(mode="after")
    def _unique_hosts(self) -> Config:
        names = [h.name for h in self.hosts]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"host names must be unique: {', '.join(sorted(dup))}")
        for h in self.hosts:
            if h.power_curve and h.power_curve not in self.power_models:
                raise ValueError(f"host {h.name}: power_curve {h.power_curve!r} is not in "
                                 "[power_models]")
        return self

    def curves(self) -> dict[str, PowerCurve]:
        """host -> its power model (hosts without one are left out: the default applies)."""
        return {h.name: self.power_models[h.power_curve].curve(h.power_curve)
                for h in self.hosts if h.power_curve}

    def manages(self, vm: str) -> bool:
        return any(fnmatch.fnmatchcase(vm, pattern) for pattern in self.manage)

    def host(self, name: str) -> HostConfig:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def require_host(self, name: str) -> HostConfig:
        """The host a command names, or the error that lists the hosts the config has."""
        for h in self.hosts:
            if h.name == name:
                return h
        where = f" in {self.source_path}" if self.source_path else ""
        raise UlmError(f"unknown host {name!r}{where} (the config has "
                       f"{', '.join(h.name for h in self.hosts)})")

    def policy_ref(self) -> str:
        """The policy as `resolve_policy` takes it: a path relative to the config, or a name."""
        if self.policy.endswith(".toml") and self.source_path:
            path = Path(self.policy)
            if not path.is_absolute():
                return str(Path(self.source_path).parent / path)
        return self.policy


def load_config(path: Path) -> Config:
    cfg = load_model(path, Config, "config")
    return cfg.model_copy(update={"source_path": str(path)})
