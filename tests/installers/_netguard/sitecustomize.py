"""Put on PYTHONPATH to refuse every IP connection and name lookup of a Python process (AF_UNIX stays).

The installer check uses it where `unshare -n` (a network namespace) is not permitted.
"""

import socket

_real_connect = socket.socket.connect


def _connect(self, address):  # type: ignore[no-untyped-def]
    if self.family != getattr(socket, "AF_UNIX", None):
        raise ConnectionRefusedError(f"network blocked for the installer check: {address!r}")
    return _real_connect(self, address)


def _getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    raise socket.gaierror(socket.EAI_NONAME, f"network blocked for the installer check: {host!r}")


socket.socket.connect = _connect  # type: ignore[method-assign]
socket.getaddrinfo = _getaddrinfo
