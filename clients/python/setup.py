"""Build hook: generate statehub's protobuf and gRPC stubs at build time.

The contract lives in ``api/statehub/v1/*.proto`` at the repository root. The
stubs are generated from those files by ``grpc_tools.protoc`` whenever the
package is built (wheel, editable install, ``setup.py build_py``), into
``statehub/_proto/``, which is never committed. protoc writes absolute imports
(``from statehub.v1 import value_pb2``); they are rewritten to package-relative
ones (``from . import value_pb2``) so the stubs live privately inside the
``statehub`` package and cannot clash with another copy of the same protos.

The hook also writes ``statehub/_proto/_build_info.py``, recording where the
source repository was, so an installed package can find the server binary
built there (``<repo>/build/server/statehub-server``).

Where the .proto files are looked for, in order: ``$STATEHUB_API_DIR``,
``../../api`` (a checkout), ``./api`` (an sdist).

With ``$STATEHUB_WHEEL_BINARIES`` set to a directory holding
``statehub-server`` and ``statehub-cli`` (``scripts/build.sh wheel`` sets
it), the package carries those binaries in ``statehub/_bin/``: the wheel is
then platform-specific (``py3-none-linux_*``, for ``auditwheel repair`` to
bundle their shared libraries and retag), gets the ``statehub-server`` and
``statehub-cli`` commands, and records no source root. Without it the
package is pure Python, as before.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py as _build_py
from setuptools.command.sdist import sdist as _sdist

HERE = Path(__file__).resolve().parent
PROTO_PACKAGE = Path("statehub") / "v1"
OUT_DIR = HERE / "statehub" / "_proto"

_ABSOLUTE_IMPORT = re.compile(r"^from statehub\.v1 import ", re.MULTILINE)

BINARIES_ENV = "STATEHUB_WHEEL_BINARIES"
BINARIES = ("statehub-server", "statehub-cli")
# Where the binaries sit inside the package; statehub/_server.py looks there.
BIN_DIR = Path("statehub") / "_bin"


def _binaries_dir() -> Path | None:
    """The directory of the binaries to ship, or None for a pure package."""
    given = os.environ.get(BINARIES_ENV)
    if not given:
        return None
    directory = Path(given).resolve()
    missing = [b for b in BINARIES if not os.access(directory / b, os.X_OK)]
    if missing:
        raise SystemExit(
            f"statehub: ${BINARIES_ENV} is {given!r}, which holds no executable "
            + " or ".join(missing)
        )
    return directory


def _api_dir() -> Path:
    candidates = []
    if os.environ.get("STATEHUB_API_DIR"):
        candidates.append(Path(os.environ["STATEHUB_API_DIR"]))
    candidates += [HERE.parent.parent / "api", HERE / "api"]
    for candidate in candidates:
        if (candidate / PROTO_PACKAGE).is_dir():
            return candidate.resolve()
    raise SystemExit(
        "statehub: cannot find the .proto files (api/statehub/v1/*.proto); "
        "looked in " + ", ".join(str(c) for c in candidates) + ". Build from a "
        "statehub checkout or set STATEHUB_API_DIR to its api/ directory."
    )


def _source_root(api_dir: Path) -> str:
    """The repository root when building from a checkout, else ""."""
    root = api_dir.parent
    return str(root) if (root / "server").is_dir() else ""


def generate_stubs() -> None:
    """Runs grpc_tools.protoc on every statehub/v1 proto into statehub/_proto."""
    import grpc_tools
    from grpc_tools import protoc

    api_dir = _api_dir()
    protos = sorted((api_dir / PROTO_PACKAGE).glob("*.proto"))
    if not protos:
        raise SystemExit(f"statehub: no .proto files in {api_dir / PROTO_PACKAGE}")
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "grpc_tools.protoc",
            f"-I{api_dir}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *[str(p.relative_to(api_dir)) for p in protos],
        ]
        if protoc.main(args) != 0:
            raise SystemExit("statehub: grpc_tools.protoc failed on " + str(api_dir))
        if OUT_DIR.exists():
            shutil.rmtree(OUT_DIR)
        OUT_DIR.mkdir(parents=True)
        for generated in sorted((Path(tmp) / PROTO_PACKAGE).iterdir()):
            text = _ABSOLUTE_IMPORT.sub("from . import ", generated.read_text())
            (OUT_DIR / generated.name).write_text(text)
    (OUT_DIR / "__init__.py").write_text(
        '"""Generated from api/statehub/v1/*.proto at build time; do not edit."""\n'
    )
    # A wheel that carries the server points at no checkout: the build
    # machine's paths mean nothing where it is installed.
    source_root = "" if _binaries_dir() else _source_root(api_dir)
    (OUT_DIR / "_build_info.py").write_text(
        '"""Written by setup.py at build time; do not edit."""\n\n'
        f"SOURCE_ROOT = {source_root!r}\n"
        f"GRPC_TOOLS_VERSION = {_grpc_tools_version()!r}\n"
    )


def _grpc_tools_version() -> str:
    from importlib.metadata import version

    return version("grpcio-tools")


def _protobuf_version() -> str:
    from google.protobuf import __version__

    return str(__version__)


def _pins() -> tuple[str, str]:
    """The grpcio and protobuf requirements: at least the versions that
    generated the stubs.

    Generated code checks its runtime: protobuf refuses gencode newer than
    itself, and *_pb2_grpc refuses a grpcio older than the grpcio-tools that
    wrote it.
    """
    try:
        grpc_version = _grpc_tools_version()
        protobuf_version = _protobuf_version()
    except Exception:  # metadata-only invocations without grpcio-tools
        return "grpcio>=1.51", "protobuf>=4.21"
    major = int(protobuf_version.split(".")[0])
    return f"grpcio>={grpc_version}", f"protobuf>={protobuf_version},<{major + 1}"


def _dependencies() -> list[str]:
    """Runtime requirements of the default transport (the lane): protobuf
    only. grpcio is the ``grpc`` extra."""
    return [_pins()[1]]


def _extras() -> dict[str, list[str]]:
    grpcio = _pins()[0]
    return {
        # grpc: the gRPC transport (transport="grpc", TLS).
        "grpc": [grpcio],
        # metrics: statehub.enable_metrics() reports client-side call
        # latency, lock wait time and reconnects through prometheus_client
        # (off unless enabled).
        "metrics": ["prometheus_client>=0.16"],
        "test": [
            grpcio,
            "pytest>=7",
            "pytest-timeout>=2.1",
            "grpcio-tools>=1.51",
            "mypy>=1.5",
            "ruff>=0.4",
            "types-protobuf",
            "prometheus_client>=0.16",
        ],
    }


class build_py(_build_py):  # noqa: N801 - setuptools' command naming
    """build_py that first generates statehub/_proto from the .proto files,
    and copies the binaries in when the wheel is to carry them."""

    def run(self) -> None:
        generate_stubs()
        super().run()
        target = Path(self.build_lib) / BIN_DIR
        # A build directory used before by a wheel build must not slip its
        # binaries into a pure package.
        shutil.rmtree(target, ignore_errors=True)
        source = _binaries_dir()
        if source is None:
            return
        target.mkdir(parents=True)
        for binary in BINARIES:
            shutil.copy2(source / binary, target / binary)


class BinaryDistribution(Distribution):
    """A distribution with binaries in it: installed into platlib, and its
    wheel is platform-specific."""

    def has_ext_modules(self) -> bool:
        return True


def _bdist_wheel() -> type:
    """bdist_wheel tagged for any Python 3 on this platform: the binaries do
    not load into the interpreter, so no Python version or ABI is named.
    (setuptools 70.1 or later has it; pip's isolated build gets the newest.)"""
    from setuptools.command.bdist_wheel import bdist_wheel

    class platform_wheel(bdist_wheel):  # noqa: N801
        def get_tag(self) -> tuple[str, str, str]:
            return "py3", "none", super().get_tag()[2]

    return platform_wheel


class sdist(_sdist):  # noqa: N801
    """sdist that carries the .proto files, so a wheel builds from it alone."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        target = Path(base_dir) / "api" / PROTO_PACKAGE
        target.mkdir(parents=True, exist_ok=True)
        for proto in (_api_dir() / PROTO_PACKAGE).glob("*.proto"):
            shutil.copy2(proto, target / proto.name)


# setuptools checks that every listed package's directory exists before any
# command runs (egg_info does, before build_py can generate the stubs): on a
# clean checkout, make the directory; build_py fills it.
if not (OUT_DIR / "__init__.py").exists():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "__init__.py").write_text('"""Filled by build_py from api/."""\n')

commands: dict[str, type] = {"build_py": build_py, "sdist": sdist}
distribution: type[Distribution] = Distribution
scripts: list[str] = []
if _binaries_dir() is not None:
    commands["bdist_wheel"] = _bdist_wheel()
    distribution = BinaryDistribution
    # Python entry points that exec the binaries in statehub/_bin/; a pure
    # package has no binary for them to run.
    scripts = [
        "statehub-server = statehub.server:main",
        "statehub-cli = statehub.server:cli",
    ]

setup(
    distclass=distribution,
    cmdclass=commands,
    install_requires=_dependencies(),
    extras_require=_extras(),
    entry_points={"console_scripts": scripts},
)
