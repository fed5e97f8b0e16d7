"""Loaded by every Python process the notebook tests start (the directory is put on
PYTHONPATH).

When ``TRUSTML_NETGUARD_LOG`` names a file, any attempt to resolve a non-local host name
or to connect or send to a non-loopback address is written to that file and refused with
an OSError. The test then fails on the log even if a library swallowed the error.
"""

import os

_LOG = os.environ.get("TRUSTML_NETGUARD_LOG")

if _LOG:
    import ipaddress
    import socket

    _LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}

    def _is_local(host) -> bool:
        if host is None:
            return True
        if isinstance(host, bytes):
            host = host.decode()
        host = str(host)
        if host in _LOCAL_NAMES:
            return True
        try:
            return ipaddress.ip_address(host.split("%")[0]).is_loopback
        except ValueError:
            return False

    def _refuse(what: str, target) -> None:
        with open(_LOG, "a") as log:
            log.write(f"{what} {target!r}\n")
        raise OSError(
            f"network access is blocked in the trustml test suite: {what} {target!r}"
        )

    def _check_address(sock, address, what: str) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(
            address[0]
        ):
            _refuse(what, address)

    _connect, _connect_ex, _sendto = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.socket.sendto,
    )
    _getaddrinfo = socket.getaddrinfo

    def connect(self, address):
        _check_address(self, address, "connect")
        return _connect(self, address)

    def connect_ex(self, address):
        _check_address(self, address, "connect")
        return _connect_ex(self, address)

    def sendto(self, data, *args):
        _check_address(self, args[-1], "sendto")
        return _sendto(self, data, *args)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_local(host):
            _refuse("getaddrinfo", host)
        return _getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto = (
        connect,
        connect_ex,
        sendto,
    )
    socket.getaddrinfo = getaddrinfo
