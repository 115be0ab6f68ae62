#!/usr/bin/env bash
# The whole test suite: installs what the tests need (scripts/setup.sh, once), then runs
# every test, then the race detector over the concurrent packages.
#
#   scripts/test.sh                 set up, then the whole suite
#   scripts/test.sh ARGS...         set up, then go test ARGS... only (e.g. -run X ./archive/)
#   scripts/test.sh --loaded        the whole suite with two CPU-bound processes beside it
#
# DANGAN_TEST_SHIFT_YEARS=N moves every pinned test clock N years (internal/testenv).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

if [ "${1:-}" = "--loaded" ]; then
  shift
  stress-ng --cpu 2 --timeout 3h --quiet &
  hogs=$!
  trap 'kill $hogs 2>/dev/null || true' EXIT
fi
if [ $# -gt 0 ]; then
  go test "$@"
  exit
fi
start=$SECONDS
go test ./...
# The race detector over the concurrent code (hash tees, the committers, the event log, spools, stores).
go test -race ./archive/... ./api/ ./storage/... ./formats/... ./signing/...
echo "test.sh: the whole suite passed in $((SECONDS - start)) s" >&2
