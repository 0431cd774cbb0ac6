"""NamespaceProxy: Manager's Namespace on ``statehub.v1.Namespaces``.

Attributes whose names start with an underscore belong to the proxy itself,
as with Manager: ``ns._hidden = 1`` sets it on this proxy only (never sent,
not in ``str(ns)`` or ``vars(ns)``, not pickled). Every other attribute lives
on the server. The proxy has no public methods of its own, so no attribute
name is shadowed.
"""

from __future__ import annotations

from multiprocessing import managers
from typing import Any

from . import _codec
from ._proto import namespace_pb2, value_pb2
from ._proxy import BaseProxy, Options, Token, register
from ._wire import string_field, value_field

# The namespace requests' fields (statehub._wire): attribute 2, value 3.
_ATTRIBUTE, _VALUE = b"\x12", b"\x1a"


@register(value_pb2.NAMESPACE)
class NamespaceProxy(BaseProxy):
    """A shared namespace: ``ns.x = 1`` in one process, ``ns.x`` in another.

    ``str(ns)`` is ``Namespace(a=1, b=2)`` and ``vars(ns)`` a dict of the
    attributes, both read in one reply. Safe to use from several threads and
    processes; each attribute access is one atomic server operation.
    """

    # _local holds the proxy's own underscore attributes (``ns._hidden``),
    # which Manager's proxy keeps in its __dict__; ours is the remote one.
    __slots__ = ("_local",)
    _service = "Namespaces"

    _local: dict[str, Any]

    def __init__(self, token: Token, options: Options, *, held: bool) -> None:
        object.__setattr__(self, "_local", {})
        super().__init__(token, options, held=held)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: the proxy's machinery (slots,
        # methods) was not it.
        if name.startswith("_"):
            # object.__getattribute__: an unset slot must not recurse here.
            local = object.__getattribute__(self, "_local")
            try:
                return local[name]
            except KeyError:
                raise AttributeError(
                    f"{type(self).__name__!r} object has no attribute {name!r}",
                    name=name,
                    obj=self,
                ) from None
        reply = self._call_wire(
            "Get",
            namespace_pb2.NamespaceGetRequest,
            string_field(_ATTRIBUTE, name),
            attribute=name,
        )
        if reply is None:
            response = self._call(
                "Get",
                namespace_pb2.NamespaceGetRequest(
                    name=self._token.name, attribute=name
                ),
                attribute=name,
            )
            return _codec.decode(response.value, self._token.address, self._options)
        return _codec.reply_value(
            reply,
            namespace_pb2.NamespaceGetResponse,
            self._token.address,
            self._options,
        )

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            if hasattr(type(self), name):
                # The proxy's own slots; its methods are read-only.
                object.__setattr__(self, name, value)
            else:
                self._local[name] = value
            return
        if (
            self._call_wire(
                "Set",
                namespace_pb2.NamespaceSetRequest,
                string_field(_ATTRIBUTE, name),
                value_field(_VALUE, value),
            )
            is None
        ):
            self._call(
                "Set",
                namespace_pb2.NamespaceSetRequest(
                    name=self._token.name,
                    attribute=name,
                    value=_codec.encode(value, self._token.address, self._options),
                ),
            )

    def __delattr__(self, name: str) -> None:
        if name.startswith("_"):
            if name in self._local:
                del self._local[name]
            else:
                object.__delattr__(self, name)
            return
        self._call(
            "Delete",
            namespace_pb2.NamespaceDeleteRequest(name=self._token.name, attribute=name),
            attribute=name,
        )

    def _attributes(self) -> dict[str, Any]:
        response = self._call(
            "Items", namespace_pb2.NamespaceItemsRequest(name=self._token.name)
        )
        return dict(
            _codec.decode_entries(
                response.attributes.entries, self._token.address, self._options
            )
        )

    @property
    def __dict__(self) -> dict[str, Any]:  # type: ignore[override]
        """The attributes, for ``vars(ns)`` (a copy: writing it changes nothing)."""
        return self._attributes()

    def _getvalue(self) -> managers.Namespace:
        return managers.Namespace(**self._attributes())

    def _str(self) -> str:
        # Manager's Namespace repr sorts the "name=value" strings.
        parts = sorted(f"{k}={v!r}" for k, v in self._attributes().items())
        return "Namespace({})".format(", ".join(parts))
