"""statehub: multiprocessing.Manager()'s shared objects, on a gRPC server.

Swap ``multiprocessing.Manager()`` for ``statehub.Manager()`` and the
program runs unchanged; the shared objects then live in a statehub-server
that C++ programs and other hosts can reach too::

    import statehub

    with statehub.Manager() as m:       # a private server, like Manager()
        d = m.dict()
        d["hits"] = 0
        d.increment("hits")             # atomic on the server

Transports: by default statehub talks to the server over the lane, its own
framed protocol on a plain socket, and needs no grpcio at all. gRPC is one
option away (``statehub.Manager(address, transport="grpc")``, or
``STATEHUB_TRANSPORT=grpc``; TLS implies it) with ``pip install
'statehub[grpc]'``.

Fork support for the gRPC transport: grpcio lets a forked child open
channels only if ``GRPC_ENABLE_FORK_SUPPORT`` is set before grpc is first
imported. Importing statehub sets it (unless it is already set) without
importing grpc, so ``import statehub`` should come before any ``import grpc``
in a program that uses the gRPC transport and forks; statehub warns when it
first uses gRPC if grpc was imported first without it. The lane needs none
of this.
"""

from __future__ import annotations

import os
import sys

if "grpc" not in sys.modules:
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "1")

from . import errors
from ._cache import CacheInfo, cached
from ._cells import ArrayProxy, ValueProxy
from ._codec import MISSING, Blob
from ._connection import DEFAULT_TIMEOUT
from ._dict import DictProxy
from ._events import BarrierProxy, EventProxy
from ._list import ListProxy
from ._locks import (
    AcquirerProxy,
    ConditionProxy,
    Deadlock,
    DeadlockEdge,
    Holder,
    LockProxy,
    LockState,
    SemaphoreProxy,
)
from ._metrics import disable_metrics, enable_metrics
from ._namespace import NamespaceProxy
from ._proxy import BaseProxy, Token
from ._queue import JoinableQueueProxy, QueueProxy
from ._set import SetProxy
from ._watch import Watch, WatchEvent
from .errors import (
    AuthenticationError,
    BrokenBarrierError,
    DeadlineExceeded,
    DeadlockError,
    LimitExceeded,
    ObjectNotFound,
    ServerNotFound,
    SessionError,
    SessionLost,
    StatehubAttributeError,
    StatehubError,
    StatehubIndexError,
    StatehubKeyError,
    StatehubRemoteError,
    StatehubRuntimeError,
    StatehubTypeError,
    StatehubValueError,
    WatchTooOld,
)
from .errors import (  # public as statehub.ConnectionError; see __all__
    ConnectionError as ConnectionError,
)
from .manager import Manager, NamedObjects, ObjectInfo, SyncManager

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TIMEOUT",
    "MISSING",
    "AcquirerProxy",
    "ArrayProxy",
    "AuthenticationError",
    "BarrierProxy",
    "BaseProxy",
    "Blob",
    "BrokenBarrierError",
    "CacheInfo",
    # ConnectionError is left out on purpose: a star import would shadow the
    # builtin, and `except ConnectionError` would then miss OSError's kind.
    # Use statehub.ConnectionError.
    "ConditionProxy",
    "DeadlineExceeded",
    "Deadlock",
    "DeadlockEdge",
    "DeadlockError",
    "DictProxy",
    "EventProxy",
    "Holder",
    "JoinableQueueProxy",
    "LimitExceeded",
    "ListProxy",
    "LockProxy",
    "LockState",
    "Manager",
    "NamedObjects",
    "NamespaceProxy",
    "ObjectInfo",
    "ObjectNotFound",
    "QueueProxy",
    "SemaphoreProxy",
    "ServerNotFound",
    "SessionError",
    "SessionLost",
    "SetProxy",
    "StatehubAttributeError",
    "StatehubError",
    "StatehubIndexError",
    "StatehubKeyError",
    "StatehubRemoteError",
    "StatehubRuntimeError",
    "StatehubTypeError",
    "StatehubValueError",
    "SyncManager",
    "Token",
    "ValueProxy",
    "Watch",
    "WatchEvent",
    "WatchTooOld",
    "__version__",
    "cached",
    "disable_metrics",
    "enable_metrics",
    "errors",
]
