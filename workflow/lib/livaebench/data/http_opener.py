"""An urllib opener for GEO downloads: http(s) only, redirects guarded by :mod:`.url_policy`, and every
socket handed to a :class:`Deadline` that shuts it when the transfer's time is up.

urllib rather than urllib3: the deadline needs every socket of a transfer as it connects (a hook on
urllib's connection class), the redirect guard needs each hop (urllib's redirect handler), and the
resume logic (:mod:`.http_transfer`) is ours either way; urllib3's retries and pools would need the same
hooks again and make no code shorter.
"""
from __future__ import annotations

import socket
import threading
import time
import urllib.request

from .url_policy import GuardedRedirects


class Deadline:
    """An overall time limit of one transfer, retries included.

    A timer shuts down the sockets of the transfer when the time is up, wherever the transfer is blocked
    (connecting, reading headers, reading the body), so a server that trickles bytes cannot hold a job.
    """

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self._end = time.monotonic() + self.seconds
        self._expired = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(self.seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    @property
    def expired(self) -> bool:
        return self._expired.is_set() or time.monotonic() >= self._end

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def adopt(self, sock) -> None:
        with self._lock:
            self._sockets.append(sock)
        if self._expired.is_set():
            self._shut(sock)

    def forget(self) -> None:
        with self._lock:
            self._sockets.clear()

    def cancel(self) -> None:
        self._timer.cancel()

    def _fire(self) -> None:
        self._expired.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._shut(sock)

    @staticmethod
    def _shut(sock) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


class _Watched:
    """Mixin for urllib's HTTP(S) handlers: hands every connected socket to the transfer's deadline."""

    def __init__(self, deadline: Deadline, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._deadline = deadline

    def do_open(self, http_class, req, **kwargs):
        deadline = self._deadline

        class Connection(http_class):
            def connect(self):
                super().connect()
                deadline.adopt(self.sock)

        return super().do_open(Connection, req, **kwargs)


class _WatchedHTTP(_Watched, urllib.request.HTTPHandler):
    pass


class _WatchedHTTPS(_Watched, urllib.request.HTTPSHandler):
    pass


def opener(allowed: frozenset, deadline: Deadline) -> urllib.request.OpenerDirector:
    """An opener for http(s) only (no file:, ftp: or data: handlers), with guarded redirects."""
    director = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.UnknownHandler(),
                    urllib.request.HTTPDefaultErrorHandler(), GuardedRedirects(allowed),
                    urllib.request.HTTPErrorProcessor(), _WatchedHTTP(deadline), _WatchedHTTPS(deadline)):
        director.add_handler(handler)
    return director
