"""A standalone statehub-server from Python, and the binary wheel's commands.

``python -m statehub.server [flags]`` runs the statehub-server that
``statehub.Manager()`` would start (:func:`statehub._server.
find_server_binary`: ``$STATEHUB_SERVER``, the one inside the binary wheel,
``$PATH``, a checkout's build) in place of the Python process, with the
server's own flags. Without flags it serves on its embedded default:
``unix:///tmp/statehub.sock`` and ``127.0.0.1:7420``, metrics on
``127.0.0.1:9420``. Example::

    python -m statehub.server --listen=unix:///tmp/app.sock --metrics_listen=

The binary wheel installs :func:`main` and :func:`cli` as the commands
``statehub-server`` and ``statehub-cli``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn

from . import errors
from ._server import find_cli_binary, find_server_binary

__all__ = ["cli", "main"]


def _exec(name: str, find: Callable[[], str]) -> NoReturn:
    """Replaces this process with the binary ``find`` returns, passing the
    command line on, so that signals and the exit status are the binary's
    own."""
    try:
        binary = find()
    except errors.ServerNotFound as e:
        sys.stderr.write(f"{name}: {e}\n")
        sys.exit(1)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(binary, [name, *sys.argv[1:]])


def main() -> NoReturn:
    """The ``statehub-server`` command: runs statehub-server with this
    process's arguments."""
    _exec("statehub-server", find_server_binary)


def cli() -> NoReturn:
    """The ``statehub-cli`` command: runs statehub-cli with this process's
    arguments."""
    _exec("statehub-cli", find_cli_binary)


if __name__ == "__main__":
    main()
