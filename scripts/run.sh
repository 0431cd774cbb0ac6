#!/usr/bin/env bash
# Installs what the server needs (Debian packages only: no Python, no helm),
# builds statehub-server and statehub-cli, and starts the server on its
# embedded default (unix:///tmp/statehub.sock and 127.0.0.1:7420). Extra
# arguments are passed to the server. scripts/test.sh installs the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --server
scripts/build.sh server
exec build-server/server/statehub-server "$@"
