"""A loopback port of this machine relayed to the same port on the controller's loopback.

ULM runs inside the lab's controller namespace (it reaches the hosts only from there), so its
dashboard listens on labctl's 127.0.0.1; a browser on this machine cannot reach that. This relay
listens on this machine's 127.0.0.1:PORT, then enters labctl's network namespace: the socket it
listens on stays where it was made, the connections it opens are made inside labctl. Nothing
leaves the machine: both ends are loopback.

    python -m ulm.lab.forward PORT     (root; runs until killed; `scripts/demo.sh` starts it)
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import sys
import threading

from ulm.lab.network import netns_path
from ulm.lab.paths import CONTROLLER

CLONE_NEWNET = 0x40000000


def _enter(ns: str) -> None:
    fd = os.open(netns_path(ns), os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
    finally:
        os.close(fd)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := a.recv(65536):
            b.sendall(data)
    with contextlib.suppress(OSError):
        b.shutdown(socket.SHUT_WR)


def _serve(client: socket.socket, port: int) -> None:
    try:
        upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
    back.start()
    _pipe(client, upstream)
    back.join()
    client.close()
    upstream.close()


def main(port: int) -> None:
    listener = socket.create_server(("127.0.0.1", port))  # this machine's loopback
    _enter(CONTROLLER)  # from here on, new sockets are labctl's
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_serve, args=(client, port), daemon=True).start()


if __name__ == "__main__":
    main(int(sys.argv[1]))
