"""One schema, SQLAlchemy Core. Times are float seconds since the epoch (UTC).

Changes to it need an Alembic revision in `migrations/versions/` (a test compares the two).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
)

metadata = MetaData()

hosts = Table(
    "hosts", metadata,
    Column("name", String(255), primary_key=True),
    Column("cpu", Float, nullable=False),  # capacity in cpu units (cores)
    Column("cores", Integer, nullable=False),
    Column("mem_mib", Float, nullable=False),
    Column("reachable", Boolean, nullable=False, default=True),
    Column("error", Text, nullable=False, default=""),
    Column("labels", JSON, nullable=False, default=dict),
    Column("power", String(255), nullable=False, default=""),
    Column("last_seen", Float, nullable=False),
    #: the bogus-metrics guard's verdict of the last round ("" = believed, ulm.collect.guard)
    Column("quarantine", Text, nullable=False, default="", server_default=""),
    #: libvirt's host CPU (`getCapabilities`): model and feature names ("" / [] = unknown)
    Column("cpu_model", Text, nullable=False, default="", server_default=""),
    Column("cpu_features", JSON, nullable=False, default=list, server_default="[]"),
)

vms = Table(
    "vms", metadata,
    Column("name", String(255), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("vcpus", Integer, nullable=False),
    Column("mem_mib", Float, nullable=False),
    Column("labels", JSON, nullable=False, default=dict),
    Column("managed", Boolean, nullable=False, default=True),
    Column("last_seen", Float, nullable=False),
    Column("last_moved_at", Float, nullable=True),
    #: what its CPUs do (`ulm.model.VmState`), as the last collection read it
    Column("state", String(16), nullable=False, default="running", server_default="running"),
    #: the CPU features its domain definition requires ([] = none known, no check)
    Column("cpu_features", JSON, nullable=False, default=list, server_default="[]"),
)

samples = Table(
    "samples", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("kind", String(8), nullable=False),  # host | vm
    Column("name", String(255), nullable=False),
    Column("host", String(255), nullable=False, default=""),
    Column("cpu", Float, nullable=True),  # host: fraction busy; vm: cpu units busy
    Column("mem_mib", Float, nullable=True),  # in use
    Column("resolution_s", Float, nullable=False, default=0.0),  # 0 = raw
    Column("source", String(32), nullable=False, default=""),
    Index("ix_samples_kind_name_ts", "kind", "name", "ts"),
    Index("ix_samples_ts", "ts"),
    Index("ix_samples_host_ts", "host", "ts"),  # how long a host has been empty
    Index("ix_samples_resolution_ts", "resolution_s", "ts"),  # retention's oldest raw sample
    # a VM's newest memory figure when none is in the window (partial: rows that have one)
    Index("ix_samples_mem", "kind", "name", "ts", sqlite_where=text("mem_mib IS NOT NULL"),
          postgresql_where=text("mem_mib IS NOT NULL")),
)

plans = Table(
    "plans", metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("snapshot_id", String(64), nullable=False),
    Column("policy_digest", String(64), nullable=False),
    Column("mode", String(16), nullable=False),  # advise | enforce | manual
    Column("status", String(16), nullable=False),  # proposed | applied | failed | superseded
    Column("body", JSON, nullable=False),
)

outcomes = Table(
    "outcomes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("plan_id", String(64), ForeignKey("plans.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("vm", String(255), nullable=False, default=""),
    Column("src", String(255), nullable=False, default=""),
    Column("dst", String(255), nullable=False, default=""),
    Column("host", String(255), nullable=False, default=""),
    Column("status", String(16), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=False),
    Index("ix_outcomes_plan", "plan_id"),
)

journal = Table(
    "journal", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("plan_id", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("state", String(16), nullable=False),  # intent | started | done | failed
    Column("detail", Text, nullable=False, default=""),
    Column("ts", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("epoch", Integer, nullable=True),  # the leader's fencing epoch (ulm.store.lease)
    Index("ix_journal_state", "state"),
    Index("ix_journal_kind_ts", "kind", "ts"),  # migrations started today (ulm.budget)
)

maintenance = Table(
    "maintenance", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("host", String(255), nullable=False),
    Column("start", Float, nullable=False),
    Column("end", Float, nullable=False),
    Column("power_off", Boolean, nullable=False, default=False),
    Column("reason", Text, nullable=False, default=""),
    Column("status", String(16), nullable=False),  # booked | draining | down | done | ...
    Column("detail", Text, nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("return_home", Boolean, nullable=False, default=False, server_default=false()),
    Column("home_vms", JSON, nullable=True),  # the VMs drained away, to bring back after
)

power_events = Table(
    "power_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("host", String(255), nullable=False),
    Column("action", String(16), nullable=False),  # on | off
    Column("driver", String(32), nullable=False, default=""),
    Column("result", String(16), nullable=False),  # done | failed | skipped
    Column("detail", Text, nullable=False, default=""),
)

power_readings = Table(  # what a host's BMC meters, where it does (watts)
    "power_readings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("host", String(255), nullable=False),
    Column("watts", Float, nullable=False),
    Column("resolution_s", Float, nullable=False, default=0.0),  # 0 = raw, else a bucket mean
    Index("ix_power_readings_host_ts", "host", "ts"),
)

power_models = Table(  # a host's `power` names one: watts at 0 %, 10 %, ... 100 % CPU
    "power_models", metadata,
    Column("name", String(255), primary_key=True),
    Column("watts", JSON, nullable=False),
)

locks = Table(  # unused since the lease (0005/0006) leads; kept: every ULM store has it
    "locks", metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", String(255), nullable=False),
    Column("expires_at", Float, nullable=False),
)

leases = Table(  # leadership with a fencing epoch (ulm.store.lease)
    "leases", metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", String(255), nullable=False),
    Column("epoch", Integer, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("renewed_at", Float, nullable=False),
    Column("since", Float, nullable=True),  # when the current epoch began
)

events = Table(  # the event stream's events no other table keeps (ulm.store.events)
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("kind", String(64), nullable=False),  # migration_started, leader_changed, mode, ...
    Column("severity", String(16), nullable=False),  # "" for what the API did
    Column("vm", String(255), nullable=False),  # the names it is about ("": none)
    Column("host", String(255), nullable=False),
    Column("src", String(255), nullable=False),
    Column("dst", String(255), nullable=False),
    Column("plan_id", String(64), nullable=False),
    Column("text", Text, nullable=False),  # the line people read, rendered when it happened
    Column("body", JSON, nullable=False),  # the event as the stream sent it
    Index("ix_events_ts", "ts"),
)
