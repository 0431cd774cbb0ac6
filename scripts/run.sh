#!/usr/bin/env bash
# Installs dependencies, builds, and starts statehub-server on its embedded
# default (unix:///tmp/statehub.sock and 127.0.0.1:7420). Extra arguments are
# passed to the server.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release statehub-server
exec build/server/statehub-server "$@"
