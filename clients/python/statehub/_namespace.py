"""NamespaceProxy: Manager's Namespace on ``statehub.v1.Namespaces``.

Attributes whose names start with an underscore belong to the proxy itself,
as with Manager; every other attribute lives on the server. The proxy has no
public methods of its own, so no attribute name is shadowed.
"""

from __future__ import annotations

from multiprocessing import managers
from typing import Any

from . import _codec
from ._proto import namespace_pb2, value_pb2
from ._proxy import BaseProxy, register


@register(value_pb2.NAMESPACE)
class NamespaceProxy(BaseProxy):
    """A shared namespace: ``ns.x = 1`` in one process, ``ns.x`` in another.

    ``str(ns)`` is ``Namespace(a=1, b=2)`` and ``vars(ns)`` a dict of the
    attributes, both read in one reply. Safe to use from several threads and
    processes; each attribute access is one atomic server operation.
    """

    __slots__ = ()
    _service = "Namespaces"

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: proxy internals (a leading
        # underscore) were not found, everything else is remote.
        if name.startswith("_"):
            return object.__getattribute__(self, name)
        response = self._call(
            "Get",
            namespace_pb2.NamespaceGetRequest(name=self._token.name, attribute=name),
            attribute=name,
        )
        return _codec.decode(response.value, self._token.address, self._options)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
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
