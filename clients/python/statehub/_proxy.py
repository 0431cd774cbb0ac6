"""The proxy base: tokens, holds on anonymous objects, pickling, repr.

A proxy names one shared object by a :class:`Token` (server address, object
name, type) and sends every operation through its process's connection
(:mod:`statehub._connection`), like Manager's ``BaseProxy._callmethod``.

Anonymous objects (names starting with ``_anon/``) are reference counted by
the server per session. A proxy that came with a server hold (it created the
object, was decoded from a read, or was unpickled in this process) releases
that hold when it is garbage collected. Named objects need no holds.

Each proxy class registers the object type it serves; adding a proxy for a
new type (a lock, a queue) is a new subclass with ``@register(...)``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
import weakref
from multiprocessing import util
from typing import Any, ClassVar, TypeVar

from . import _connection, _transport, errors
from ._connection import Connection, Credentials, connection_for, use_credentials
from ._proto import objects_pb2, value_pb2
from ._status import NO_KEY
from ._waits import caller, caller_fields, duration
from ._wire import Encoded, as_message, duration_field, string_field, varint

ANONYMOUS_PREFIX = "_anon/"


@functools.cache
def _parked_tags(request_type: Any) -> tuple[bytes, bytes, bytes]:
    """The key bytes of the ``timeout``, ``thread_id`` and ``label`` fields
    of a request of a call that parks (every one has them)."""
    fields = request_type.DESCRIPTOR.fields_by_name

    def key(name: str, wire_type: int) -> bytes:
        return varint(fields[name].number << 3 | wire_type)

    return key("timeout", 2), key("thread_id", 0), key("label", 2)


#: Manager's typeid for each object type (what repr() shows).
TYPEIDS: dict[value_pb2.ObjectType, str] = {
    value_pb2.DICT: "dict",
    value_pb2.LIST: "list",
    value_pb2.NAMESPACE: "Namespace",
    value_pb2.VALUE: "Value",
    value_pb2.ARRAY: "Array",
    value_pb2.LOCK: "Lock",
    value_pb2.RLOCK: "RLock",
    value_pb2.CONDITION: "Condition",
    value_pb2.SEMAPHORE: "Semaphore",
    value_pb2.BOUNDED_SEMAPHORE: "BoundedSemaphore",
    value_pb2.EVENT: "Event",
    value_pb2.BARRIER: "Barrier",
    value_pb2.QUEUE: "Queue",
    value_pb2.JOINABLE_QUEUE: "JoinableQueue",
}


@dataclasses.dataclass(frozen=True)
class Token:
    """Identifies a shared object: the server, the object's name and type.

    ``typecode`` is the ctypes/array typecode of a Value or Array when known
    ("" otherwise); it only serves repr() and Array slices.
    """

    address: str
    name: str
    type: value_pb2.ObjectType
    typecode: str = ""

    @property
    def typeid(self) -> str:
        """Manager's name for the type: 'dict', 'list', 'Namespace', ..."""
        return (
            TYPEIDS.get(self.type) or str(value_pb2.ObjectType.Name(self.type)).lower()
        )

    @property
    def anonymous(self) -> bool:
        """True for server-named, reference-counted objects."""
        return self.name.startswith(ANONYMOUS_PREFIX)


@dataclasses.dataclass(frozen=True)
class Options:
    """How proxies of one manager behave; travels with pickled proxies.

    ``allow_pickle``: store other objects as pickle blobs and unpickle blobs
    read back. ``timeout``: the deadline of each call, in seconds.
    ``credentials``: the token and TLS settings a process that unpickles a
    proxy connects with (None: whatever it already uses). ``owner``: see
    below; an error about a private server that is gone names it.
    """

    allow_pickle: bool
    timeout: float
    credentials: Credentials | None = None
    #: The pid of the process whose manager started the (private) server;
    #: 0 for a server the manager connected to.
    owner: int = 0


class ServerLife:
    """Keeps a private server running. The manager that started the server
    holds one, and so does every proxy of that server in this process (as
    CPython's proxies hold their manager): the server stops when the last of
    them is gone, or at shutdown(). Proxies in other processes hold none:
    there the server lives as long as the process that started it."""

    __slots__ = ("__weakref__",)


#: The private servers this process started, by address.
_lives: weakref.WeakValueDictionary[str, ServerLife] = weakref.WeakValueDictionary()


def keep_alive(address: str) -> ServerLife:
    """A new ServerLife for the private server at ``address``, which every
    proxy of it made from now on in this process holds."""
    life = ServerLife()
    _lives[address] = life
    return life


_PROXY_TYPES: dict[value_pb2.ObjectType, type[BaseProxy]] = {}

P = TypeVar("P", bound="type[BaseProxy]")


def register(object_type: value_pb2.ObjectType) -> Any:
    """Class decorator: ``cls`` serves objects of ``object_type``."""

    def decorate(cls: P) -> P:
        _PROXY_TYPES[object_type] = cls
        return cls

    return decorate


def proxy_type(object_type: value_pb2.ObjectType) -> type[BaseProxy]:
    """The proxy class for an object type (BaseProxy if none is registered)."""
    return _PROXY_TYPES.get(object_type, BaseProxy)


def make_proxy(token: Token, options: Options, *, held: bool) -> BaseProxy:
    """A proxy of the registered class for ``token``'s type.

    ``held`` says the server already holds the object for this process's
    session on behalf of the new proxy (which releases it when collected).
    """
    return proxy_type(token.type)(token, options, held=held)


def _release(
    conn: Connection, name: str, pid: int, fork_generation: int, pickled: list[bool]
) -> None:
    # A proxy inherited through fork dies in the child too: only the process
    # whose session took the hold gives it back.
    if os.getpid() == pid:
        handed_off = pickled[0] or fork_generation != _connection.fork_generation
        conn.release(name, handed_off=handed_off)


class BaseProxy:
    """A proxy for one shared object; the base of every statehub proxy.

    Mirrors ``multiprocessing.managers.BaseProxy``: ``repr()`` shows the
    proxy (``<DictProxy object, typeid 'dict' at 0x...>``), ``str()`` the
    referent's contents, ``_getvalue()`` returns a plain copy, and proxies
    pickle, so they can be passed to child processes (fork, spawn,
    forkserver) and stored inside other shared objects.

    Proxies are safe to use from several threads of one process.
    """

    __slots__ = (
        "__weakref__",
        "_finalizer",
        "_hold_pid",
        "_life",
        "_options",
        "_pickled",
        "_token",
        "_wire_name",
    )

    _token: Token
    _options: Options
    _finalizer: weakref.finalize[..., BaseProxy] | None
    _hold_pid: int
    # The ServerLife of the private server this process started, or None.
    _life: ServerLife | None
    # [True] once pickled: the process that unpickles it adopts the object,
    # so this one's release waits a grace period (Session.send_release).
    _pickled: list[bool]
    # The name as a request's field 1 (statehub._wire).
    _wire_name: bytes | None

    #: The rpc service of this proxy's type, e.g. "Dicts".
    _service: ClassVar[str] = ""
    #: The class name repr() shows, when Manager's differs from ours
    #: (Manager serves queues through ``AutoProxy[Queue]``).
    _manager_class: ClassVar[str] = ""

    def __init__(self, token: Token, options: Options, *, held: bool) -> None:
        object.__setattr__(self, "_token", token)
        object.__setattr__(self, "_options", options)
        object.__setattr__(self, "_finalizer", None)
        object.__setattr__(self, "_hold_pid", 0)
        object.__setattr__(self, "_pickled", [False])
        object.__setattr__(self, "_life", _lives.get(token.address))
        # None for a name protobuf would refuse: no request is encoded then.
        object.__setattr__(self, "_wire_name", string_field(b"\x0a", token.name))
        if held:
            self._note_hold(connection_for(token.address))

    # -- the funnel ---------------------------------------------------------

    def _call(
        self, method: str, request: Any, *, service: str | None = None, **kwargs: Any
    ) -> Any:
        """Runs rpc ``method`` of this proxy's service (or of ``service``);
        see Connection.call, the one funnel."""
        return connection_for(self._token.address).call(
            service or self._service,
            method,
            request,
            timeout=self._options.timeout,
            **kwargs,
        )

    def _wire_body(self, *fields: bytes | None) -> bytes | None:
        """A request's bytes: this object's name, then ``fields``, each
        already in wire form (statehub._wire) or None for "not encodable":
        then None."""
        if self._wire_name is None or None in fields:
            return None
        return self._wire_name + b"".join(fields)  # type: ignore[arg-type]

    def _encoded(self, message_type: Any, *fields: bytes | None) -> Any:
        """A ``message_type`` request of :meth:`_wire_body`'s bytes, or
        None."""
        body = self._wire_body(*fields)
        if body is None:
            return None
        return Encoded(message_type, self._token.name, body)

    def _call_wire(
        self,
        method: str,
        message_type: Any,
        *fields: bytes | None,
        key: Any = NO_KEY,
        attribute: str | None = None,
    ) -> bytes | None:
        """Runs rpc ``method`` (one that does not park) with a request in
        wire form, a ``message_type`` of :meth:`_wire_body`'s bytes, and
        returns its response in wire form; None, and nothing sent, when the
        request cannot be encoded so: the caller then builds the message."""
        body = self._wire_body(*fields)
        if body is None:
            return None
        return connection_for(self._token.address).call_wire(
            self._service,
            method,
            message_type,
            self._token.name,
            body,
            timeout=self._options.timeout,
            key=key,
            attribute=attribute,
        )

    def _park(
        self,
        method: str,
        request_type: Any,
        seconds: float | None,
        deadline: float | None,
        *,
        retry_after_fork: bool = True,
        wire: bytes = b"",
    ) -> Any:
        """Runs rpc ``method``, which may wait on the server: its request (of
        ``request_type``, with ``wire``: its other fields, in wire form)
        names this object and the calling thread and asks the server to
        wait up to ``seconds`` (None: until served); the call's deadline is
        ``deadline`` seconds (None: none).
        See the funnel's ``parked``. A call withdrawn by the transport (for
        a fork on gRPC; on the lane, because the server went away and came
        back) is made again, unless ``retry_after_fork`` is False: then the
        Withdrawn exception is raised. Before a call is made again after a
        reconnect, :meth:`_served_before_break` may say that the server had
        served it already."""
        started = time.monotonic()
        elapsed = 0.0
        while True:
            request = self._parked_request(
                request_type,
                None if seconds is None else max(seconds - elapsed, 0.0),
                wire,
            )
            try:
                return connection_for(self._token.address).call(
                    self._service,
                    method,
                    request,
                    timeout=None if deadline is None else deadline - elapsed,
                    parked=True,
                )
            except _connection.Withdrawn as withdrawn:
                if not retry_after_fork:
                    raise
                if isinstance(withdrawn, _connection.Reconnected):
                    served = self._served_before_break(as_message(request))
                    if served is not None:
                        return served
                # Cancelled so that the process could fork, or cut by a
                # reconnect: made again for what is left of its timeout.
                elapsed = time.monotonic() - started

    def _parked_request(
        self, request_type: Any, seconds: float | None, wire: bytes
    ) -> Any:
        """The request of :meth:`_park`: in wire form (an Encoded) where the
        name and the caller encode, else a message. Either way the bytes
        parse to the same message; the fields come in the order name,
        ``wire``, timeout, caller."""
        timeout_tag, id_tag, label_tag = _parked_tags(request_type)
        who = caller_fields(id_tag, label_tag)
        if self._wire_name is not None and who is not None:
            return Encoded(
                request_type,
                self._token.name,
                self._wire_name
                + wire
                + (b"" if seconds is None else duration_field(timeout_tag, seconds))
                + who,
            )
        thread_id, label = caller()
        request = request_type(name=self._token.name, thread_id=thread_id, label=label)
        request.MergeFromString(wire)
        if seconds is not None:
            request.timeout.CopyFrom(duration(seconds))
        return request

    def _served_before_break(self, request: Any) -> Any:
        """After a parked call's connection broke and its session came back:
        the reply the server had given it before (lost with the connection),
        if the proxy can tell from the object's state, else None."""
        return None

    # -- holds --------------------------------------------------------------

    def _note_hold(self, conn: Connection) -> None:
        conn.add_hold(self._token.name, self._token.type)
        finalizer = weakref.finalize(
            self,
            _release,
            conn,
            self._token.name,
            os.getpid(),
            _connection.fork_generation,
            self._pickled,
        )
        # At exit the session's Goodbye releases everything at once.
        finalizer.atexit = False
        object.__setattr__(self, "_finalizer", finalizer)
        object.__setattr__(self, "_hold_pid", os.getpid())
        # In a child started by multiprocessing with fork, take a hold of the
        # child's own, as Manager's proxies incref after fork.
        util.register_after_fork(self, BaseProxy._after_fork)

    def _after_fork(self) -> None:
        if self._hold_pid == os.getpid():
            # Unpickled in this process (spawn, forkserver): already held.
            return
        try:
            _open_anonymous(self._token)
        except Exception:
            # The object may be gone or its server shut down; using the
            # proxy will say so.
            return
        self._note_hold(connection_for(self._token.address))

    # -- pickling -----------------------------------------------------------

    def __reduce__(self) -> tuple[Any, ...]:
        self._pickled[0] = True
        extra = self._reduce_extra()
        args: tuple[Any, ...] = (type(self), self._reduce_token(), self._options)
        return (_rebuild_proxy, (*args, extra) if extra is not None else args)

    def _reduce_token(self) -> Token:
        return self._token

    def _reduce_extra(self) -> Any:
        """Client-side state that travels with a pickled proxy (a barrier's
        action, a condition's lock), or None; given back to
        :meth:`_restore_extra` in the process that unpickles it."""
        return None

    def _restore_extra(self, extra: Any) -> None:
        raise NotImplementedError

    def __deepcopy__(self, memo: Any) -> Any:
        return self._getvalue()

    # -- what Manager's proxies show ---------------------------------------

    def _getvalue(self) -> Any:
        """Returns a plain copy of the referent (Manager's ``_getvalue``)."""
        raise NotImplementedError(
            f"statehub has no client support for {self._token.typeid!r} objects yet"
        )

    def _str(self) -> str:
        return repr(self._getvalue())

    def __repr__(self) -> str:
        name = self._manager_class or type(self).__name__
        return f"<{name} object, typeid {self._token.typeid!r} at {id(self):#x}>"

    def __str__(self) -> str:
        try:
            return self._str()
        except Exception:
            return repr(self)[:-1] + "; '__str__()' failed>"


def _open_anonymous(token: Token) -> None:
    """Takes one more hold on an anonymous object for this process."""
    connection_for(token.address).call(
        "Objects", "Open", objects_pb2.OpenRequest(name=token.name, type=token.type)
    )


def _rebuild_proxy(
    cls: type[BaseProxy], token: Token, options: Options, extra: Any = None
) -> BaseProxy:
    """Unpickles a proxy: an anonymous object is adopted by this process's
    session (Objects.Open of its ``_anon/`` name adds a hold).

    A server that cannot be reached does not fail the unpickling (a Pool
    worker would take that OSError for the end of its input and exit,
    losing the task): the proxy is made without a hold, and its first use
    raises the ConnectionError, saying what became of the server."""
    if options.credentials is not None:
        use_credentials(token.address, options.credentials)
    if options.owner and options.owner != os.getpid():
        _transport.note_private_server(token.address, options.owner)
    held = token.anonymous
    if held:
        try:
            _open_anonymous(token)
        except errors.ConnectionError:
            held = False
    proxy = cls(token, options, held=held)
    if extra is not None:
        proxy._restore_extra(extra)
    return proxy
