"""The installed stubs are exactly what grpc_tools.protoc makes of api/ now.

The package generates statehub/_proto/ from api/statehub/v1/*.proto when it
is built; a stale install (the .proto files changed since) fails here.
"""

from __future__ import annotations

import importlib
import pkgutil
import tempfile
from pathlib import Path

import grpc_tools
import statehub._proto
from google.protobuf import descriptor_pb2
from grpc_tools import protoc

from conftest import REPO

API = REPO / "api"
PROTOS = sorted((API / "statehub" / "v1").glob("*.proto"))


def _strip_json_names(proto: descriptor_pb2.FileDescriptorProto) -> None:
    # protoc's descriptor sets carry json_name; the Python generator leaves it
    # out of the embedded descriptor. It is derived from the field name.
    def strip(messages: object) -> None:
        for message in messages:  # type: ignore[attr-defined]
            for field in (*message.field, *message.extension):
                field.ClearField("json_name")
            strip(message.nested_type)

    strip(proto.message_type)
    # File-level extensions too (lane.proto's lane_method option).
    for extension in proto.extension:
        extension.ClearField("json_name")


def _fresh_descriptors() -> dict[str, descriptor_pb2.FileDescriptorProto]:
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        args = [
            "grpc_tools.protoc",
            f"-I{API}",
            f"-I{well_known}",
            f"--descriptor_set_out={out}",
            *[str(p.relative_to(API)) for p in PROTOS],
        ]
        assert protoc.main(args) == 0, "protoc failed on api/"
        descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    for proto in descriptor_set.file:
        _strip_json_names(proto)
    return {f.name: f for f in descriptor_set.file}


def _installed_descriptors() -> dict[str, descriptor_pb2.FileDescriptorProto]:
    installed = {}
    for module_info in pkgutil.iter_modules(statehub._proto.__path__):
        if not module_info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"statehub._proto.{module_info.name}")
        proto = descriptor_pb2.FileDescriptorProto.FromString(
            module.DESCRIPTOR.serialized_pb
        )
        _strip_json_names(proto)
        installed[proto.name] = proto
    return installed


def test_every_proto_has_a_generated_module() -> None:
    assert PROTOS, f"no .proto files under {API}"
    names = {f"statehub/v1/{p.name}" for p in PROTOS}
    assert set(_installed_descriptors()) == names
    for proto in PROTOS:
        grpc_module = f"statehub._proto.{proto.stem}_pb2_grpc"
        importlib.import_module(grpc_module)


def test_generated_descriptors_match_the_protos() -> None:
    fresh = _fresh_descriptors()
    installed = _installed_descriptors()
    for name, proto in fresh.items():
        assert installed.get(name) == proto, (
            f"{name}: the installed stubs differ from api/ "
            "(reinstall: pip install ./clients/python)"
        )


def test_stubs_use_package_relative_imports() -> None:
    root = Path(statehub._proto.__file__).parent
    for path in root.glob("*.py"):
        text = path.read_text()
        assert "from statehub.v1" not in text and "import statehub.v1" not in text, path
