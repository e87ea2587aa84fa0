"""A TCP proxy in front of a real service that a test can cut, to stage an outage.

The services on the test machines are shared with whatever else runs there, so a test
does not restart them; it puts this proxy between its own processes and the service
and calls :meth:`FaultProxy.cut`: every open connection is closed at once (what a
restart or a network drop does to the clients) and new ones are refused until the
outage ends. The clients see what they would see in a real outage; the service
itself keeps running for everyone else.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

__all__ = ["FaultProxy", "fault_proxy"]


class FaultProxy:
    """Forward ``127.0.0.1:port`` to ``target``; :meth:`cut` stages an outage."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._closed = False
        threading.Thread(target=self._accept, name="proxy accept", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if time.monotonic() < self._down_until:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def cut(self, seconds: float) -> None:
        """Close every connection now and refuse new ones for ``seconds``."""
        self._down_until = time.monotonic() + seconds
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._drop(sock)

    def close(self) -> None:
        """Stop the proxy and close every connection."""
        self._closed = True
        self.cut(0)
        self._listener.close()


@contextmanager
def fault_proxy(host: str, port: int) -> Iterator[FaultProxy]:
    """A proxy to ``host:port`` for the block."""
    proxy = FaultProxy((host, port))
    try:
        yield proxy
    finally:
        proxy.close()
