#!/usr/bin/env bash
# Installs everything statehub needs on a fresh Debian 12 machine (as root,
# or with sudo): the C++ toolchain and libraries from Debian's packages, the
# Python virtual environment in .venv, and helm. Safe to run again.
#   scripts/setup.sh            everything, for building and testing
#   scripts/setup.sh --server   only what building statehub-server and
#                               statehub-cli needs (scripts/build.sh server;
#                               server/Dockerfile's build stage)
#   scripts/setup.sh --wheel    only what scripts/build.sh wheel needs: the
#                               server's, GoogleTest (the wheel ships the
#                               release tree's binaries, and that tree is
#                               configured with its tests) and Python's venv
set -euo pipefail
cd "$(dirname "$0")/.."

server_only=false
wheel_only=false
case "${1:-}" in
  "") ;;
  --server) server_only=true ;;
  --wheel) wheel_only=true ;;
  *) echo "setup.sh: unknown argument '$1' (--server, --wheel, or none)" >&2; exit 2 ;;
esac

# What the server and the CLI are built from.
packages=(
  build-essential cmake ninja-build pkg-config ccache
  protobuf-compiler libprotobuf-dev libgrpc++-dev protobuf-compiler-grpc
  libabsl-dev prometheus-cpp-dev libspdlog-dev libfmt-dev
  # The lane's event loop: standalone Asio (header-only).
  libasio-dev
  # The token check (SHA-256).
  libssl-dev
)
if $wheel_only; then
  packages+=(libgtest-dev libgmock-dev python3 python3-venv)
elif ! $server_only; then
  packages+=(
    git libgtest-dev libgmock-dev clang libclang-rt-14-dev clang-format
    # Makes the TLS tests' certificates.
    openssl
    python3 python3-venv
    # promtool and a real Prometheus for the metrics tests.
    prometheus
  )
fi

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
    || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if $server_only || $wheel_only; then
  exit 0
fi

# The Python client and its test tools, in .venv (PyPI). The package is
# rebuilt on every run so its generated stubs follow api/.
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q './clients/python[test]'
# PyYAML reads the chart's rendered manifests in tests/chart.
.venv/bin/python -m pip install -q pyyaml

# Helm, for the chart in charts/statehub (scripts/test.sh lints and renders
# it), built from source with Go and pinned so what the tests render does
# not drift. The -X flags are the ones Helm's own release build sets: its
# version, and the Kubernetes version `helm template` assumes (1.37, from
# the client-go v0.37 this Helm release builds against) instead of Go
# builds' 1.20, which the chart's kubeVersion (>=1.24) would refuse.
helm_version=v3.22.0
helm_kube_minor=37
go_cmd="$(command -v go || true)"
if [ -z "$go_cmd" ] && [ -x /usr/local/go/bin/go ]; then
  go_cmd=/usr/local/go/bin/go
fi
if [ -z "$go_cmd" ]; then
  echo "setup: Go 1.26 or later is needed to build helm $helm_version:" \
    "install it from https://go.dev/doc/install (into /usr/local/go)" \
    "and run this again" >&2
  exit 1
fi
helm_bin="$("$go_cmd" env GOPATH)/bin"
if [ "$("$helm_bin/helm" version --template '{{.Version}}' 2>/dev/null)" \
    != "$helm_version" ]; then
  echo "setup: building helm $helm_version with go install (a few minutes)"
  helm_x=helm.sh/helm/v3
  GOBIN="$helm_bin" "$go_cmd" install -ldflags "\
    -X $helm_x/internal/version.version=$helm_version \
    -X $helm_x/pkg/chartutil.k8sVersionMajor=1 \
    -X $helm_x/pkg/chartutil.k8sVersionMinor=$helm_kube_minor \
    -X $helm_x/pkg/lint/rules.k8sVersionMajor=1 \
    -X $helm_x/pkg/lint/rules.k8sVersionMinor=$helm_kube_minor" \
    "$helm_x/cmd/helm@$helm_version"
fi
