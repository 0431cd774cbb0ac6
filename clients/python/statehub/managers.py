"""statehub.managers: ``multiprocessing.managers`` for statehub programs.

Change ``from multiprocessing.managers import ...`` to ``from
statehub.managers import ...`` and a program's customized and remote
managers run as before (docs/python.md, "Customized and remote managers")::

    from statehub.managers import BaseManager

    class MyManager(BaseManager):
        pass

    MyManager.register("Maths", MathsClass)
    with MyManager() as manager:
        maths = manager.Maths()

:class:`BaseManager` is CPython's, with a started server that ends with the
process that started it; :class:`SyncManager` is ``statehub.SyncManager``,
whose own types live on the statehub server and whose ``register()``ed
types live in a Python process it starts. ``BaseProxy``, ``Token`` and
``RemoteError`` are CPython's, for the proxies of Python-hosted objects
(``statehub.BaseProxy`` and ``statehub.Token`` are the statehub server's).
"""

from __future__ import annotations

from multiprocessing.managers import BaseProxy, RemoteError, Token

from ._pyhost import BaseManager, PoolProxy, Server
from .manager import SyncManager

__all__ = [
    "BaseManager",
    "BaseProxy",
    "PoolProxy",
    "RemoteError",
    "Server",
    "SyncManager",
    "Token",
]
