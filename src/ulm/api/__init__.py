"""The HTTP API and dashboard: `create_app(store, cfg, api_settings, actions)`, `serve()`.

The names are loaded on first use: the config imports `ulm.api.settings` for every command,
and FastAPI alone costs over a second of start-up that `ulm status` should not pay.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ulm.api.actions import Actions
    from ulm.api.app import create_app
    from ulm.api.bus import EventBus
    from ulm.api.serve import serve
    from ulm.api.settings import ApiSettings, TokenConfig

__all__ = ["Actions", "ApiSettings", "EventBus", "TokenConfig", "create_app", "serve"]

_HOME = {"Actions": "actions", "create_app": "app", "EventBus": "bus", "serve": "serve",
         "ApiSettings": "settings", "TokenConfig": "settings"}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'ulm.api' has no attribute {name!r}")
    return getattr(importlib.import_module(f"ulm.api.{_HOME[name]}"), name)
