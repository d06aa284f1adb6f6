"""Alembic environment: run programmatically by `Store.open` with a live connection."""

from __future__ import annotations

from alembic import context

from ulm.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only programmatic use is supported
    raise RuntimeError("ULM runs its migrations itself: use Store.open(url)")
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
