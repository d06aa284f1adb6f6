"""The store: what ULM sees and does, in SQLite (default, WAL) or PostgreSQL (by URL)."""

from ulm.store.store import Store

__all__ = ["Store"]
