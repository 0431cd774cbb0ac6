"""server/Dockerfile, checked against the binaries this checkout builds.

The runtime stage must install a Debian package for every shared library
``ldd`` lists for statehub-server and statehub-cli, and nothing to build
with; the build stage must use the project's own scripts. The image itself
is not built here (no container runtime in CI); the runtime stage runs on
the same Debian release as this machine, whose packages the binaries link.

The binaries: $STATEHUB_SERVER (statehub-cli beside it), else build/server/.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "server" / "Dockerfile"


def _stages() -> dict[str, list[str]]:
    """The Dockerfile's instructions by stage name, continuations joined."""
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    logical = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        match = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", logical, re.IGNORECASE)
        if match:
            current = stages.setdefault(match.group(1), [])
        current.append(logical)
        logical = ""
    return stages


def _installed_by(instructions: list[str]) -> set[str]:
    """The packages the stage's `apt-get install` commands name."""
    packages: set[str] = set()
    for instruction in instructions:
        if not instruction.startswith("RUN "):
            continue
        for command in re.split(r"&&|;", instruction[4:]):
            words = shlex.split(command)
            if "apt-get" in words and "install" in words:
                after = words[words.index("install") + 1 :]
                packages.update(w for w in after if not w.startswith("-"))
    return packages


def _binaries() -> list[Path]:
    server = Path(
        os.environ.get("STATEHUB_SERVER")
        or ROOT / "build" / "server" / "statehub-server"
    )
    binaries = [server, server.with_name("statehub-cli")]
    for binary in binaries:
        if not os.access(binary, os.X_OK):
            pytest.fail(f"{binary} is not built: scripts/build.sh release")
    return binaries


def _variants(library: str) -> list[str]:
    """Paths dpkg may know ``library`` by (usrmerge: /lib is /usr/lib)."""
    paths = [library, os.path.realpath(library)]
    paths += ["/usr" + p for p in list(paths) if p.startswith("/lib")]
    paths += [p.removeprefix("/usr") for p in list(paths)]
    return list(dict.fromkeys(paths))


@functools.cache
def _packages_of(libraries: tuple[str, ...]) -> dict[str, str]:
    """The Debian package that ships each library, in one dpkg query."""
    queried = [v for library in libraries for v in _variants(library)]
    out = subprocess.run(
        ["dpkg-query", "-S", *queried], capture_output=True, text=True, check=False
    ).stdout
    owner: dict[str, str] = {}
    for line in out.splitlines():
        package, _, path = line.partition(": ")
        owner[path.strip()] = package.split(":", 1)[0]
    packages = {}
    for library in libraries:
        found = [owner[v] for v in _variants(library) if v in owner]
        if not found:
            pytest.fail(f"no Debian package ships {library}")
        packages[library] = found[0]
    return packages


def _linked_packages() -> dict[str, str]:
    """Each library the binaries link, as "binary: path", to its package."""
    linked = {
        f"{binary.name}: {library}": library
        for binary in _binaries()
        for library in _linked_libraries(binary)
    }
    owners = _packages_of(tuple(sorted(set(linked.values()))))
    return {where: owners[library] for where, library in linked.items()}


def _linked_libraries(binary: Path) -> list[str]:
    out = subprocess.run(
        ["ldd", str(binary)], capture_output=True, text=True, check=True
    ).stdout
    libraries = []
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and parts[parts.index("=>") + 1].startswith("/"):
            libraries.append(parts[parts.index("=>") + 1])
        elif parts and parts[0].startswith("/"):  # the dynamic loader
            libraries.append(parts[0])
        elif "not found" in line:
            pytest.fail(f"{binary}: {line.strip()}")
    return libraries


def test_the_dockerfile_has_a_build_and_a_runtime_stage() -> None:
    assert set(_stages()) == {"build", "runtime"}


def test_every_linked_library_comes_from_a_runtime_package() -> None:
    runtime = _installed_by(_stages()["runtime"])
    missing = [
        f"{where} (package {package})"
        for where, package in _linked_packages().items()
        if package not in runtime
    ]
    assert not missing, (
        "server/Dockerfile's runtime stage does not install:\n  "
        + "\n  ".join(missing)
    )


def test_the_runtime_stage_installs_nothing_to_build_with() -> None:
    runtime = _installed_by(_stages()["runtime"])
    assert runtime, "no apt-get install in the runtime stage"
    build_tools = {
        p
        for p in runtime
        if p.endswith("-dev")
        or p in {"build-essential", "cmake", "ninja-build", "g++", "gcc", "clang"}
    }
    assert not build_tools


def test_the_runtime_stage_installs_only_what_is_linked() -> None:
    extra = _installed_by(_stages()["runtime"]) - set(_linked_packages().values())
    assert not extra, f"installed but not linked: {sorted(extra)}"


def test_the_build_stage_uses_the_projects_scripts() -> None:
    build = " ".join(_stages()["build"])
    assert "scripts/setup.sh --server" in build
    assert "scripts/build.sh server" in build
    assert "apt-get" not in build, "a second recipe: let scripts/setup.sh install"


def test_the_image_runs_as_the_charts_user() -> None:
    runtime = _stages()["runtime"]
    assert "USER 65532:65532" in runtime
    assert 'ENTRYPOINT ["statehub-server"]' in runtime
    copied = [i for i in runtime if i.startswith("COPY --from=build")]
    assert copied and "statehub-server" in copied[0] and "statehub-cli" in copied[0]
