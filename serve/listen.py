"""A listener that cannot open is one line naming the option to change (exit 2), not a traceback."""

from __future__ import annotations

import errno
import socket

from medtk.errors import ConfigError


def cannot_listen(error: OSError, host: str, port: int, port_option: str) -> ConfigError:
    """The `ConfigError` for `error` raised while binding `host`:`port` (`port_option` set the port)."""
    if isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL:
        option, why = f"--host {host}", "not an address of this machine"
    elif error.errno == errno.EADDRINUSE:
        option, why = f"{port_option} {port}", "the port is in use"
    elif error.errno == errno.EACCES:
        option, why = f"{port_option} {port}", "permission denied; ports below 1024 need privileges"
    else:
        option, why = f"--host {host} {port_option} {port}", error.strerror or type(error).__name__
    return ConfigError(f"{option}: cannot listen on {host}:{port} ({why})")
