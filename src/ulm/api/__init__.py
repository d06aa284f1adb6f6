"""The HTTP API and dashboard: `create_app(store, cfg, api_settings, actions)`, `serve()`."""

from ulm.api.actions import Actions
from ulm.api.app import create_app
from ulm.api.bus import EventBus
from ulm.api.serve import serve
from ulm.api.settings import ApiSettings, TokenConfig

__all__ = ["Actions", "ApiSettings", "EventBus", "TokenConfig", "create_app", "serve"]
