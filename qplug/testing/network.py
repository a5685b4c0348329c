"""Keeping tests off the network: a plugin's tests must pass on a machine with no internet.

:func:`block_network` patches the socket module for the duration of a test (through pytest's
``monkeypatch``, so it is undone afterwards). Loopback and Unix-domain sockets stay allowed: local
servers and ``multiprocessing`` are not "the network".
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any


class NetworkBlockedError(OSError):
    """Raised when code under test tries to reach another machine.

    An :class:`OSError`, like a real connection failure, so libraries that fall back to a local
    cache when offline do so here too.
    """


_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def _is_local(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]").lower()
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def block_network(monkeypatch: Any) -> None:
    """Make connections and name lookups to anything but this machine raise :class:`NetworkBlockedError`."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family == getattr(socket, "AF_UNIX", object()):
            return
        host = address[0] if isinstance(address, tuple) and address else address
        if not _is_local(host):
            raise NetworkBlockedError(f"network access blocked in tests: connect to {address!r}")

    def connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_local(host):
            raise NetworkBlockedError(f"network access blocked in tests: lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
