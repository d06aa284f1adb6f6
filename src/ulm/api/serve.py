"""`serve(app, settings)`: uvicorn on the configured address, TLS if configured.

uvicorn's own access log is off: it prints the query string, and `/login?token=...` carries a
token. `ulm.api.app.Guard` logs each request without it instead.
"""

from __future__ import annotations

import threading
from typing import Any

import uvicorn

from ulm.api.settings import ApiSettings


def server(app: Any, settings: ApiSettings, port: int | None = None) -> uvicorn.Server:
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port if port is None else port,
        access_log=False, log_config=None, server_header=False, proxy_headers=False,
        ssl_certfile=settings.tls_cert or None, ssl_keyfile=settings.tls_key or None,
        # Open event streams would hold a shutdown up for ever; they are cut after this.
        timeout_graceful_shutdown=3, lifespan="off")
    return uvicorn.Server(config)


def serve(app: Any, settings: ApiSettings, port: int | None = None) -> None:
    """Blocks until SIGTERM/SIGINT. Run it in a thread next to the daemon's loop with
    `server(...)` and `Server.run()` instead if the daemon owns the signals."""
    server(app, settings, port).run()


def start_in_thread(app: Any, settings: ApiSettings, port: int | None = None
                    ) -> tuple[uvicorn.Server, threading.Thread]:
    """The API beside the daemon's loop (the daemon keeps the signals: uvicorn installs
    handlers only in the main thread). Stop with `server.should_exit = True; thread.join()`."""
    srv = server(app, settings, port)
    thread = threading.Thread(target=srv.run, name="ulm-api", daemon=True)
    thread.start()
    return srv, thread
