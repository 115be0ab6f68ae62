#!/usr/bin/env bash
# Installs the pinned MinIO server into a cache directory (once; the build takes a few
# minutes) and prints the binary's path. Used by .ci/run and by the tests, through
# storage/miniotest, so the README's test command works on a fresh machine.
#
#   scripts/minio.sh install   build when missing, print the path
#   scripts/minio.sh path      print the path
set -euo pipefail
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
cache="${DANGAN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dangan}/minio-$MINIO_VERSION"
case "${1:-path}" in
install)
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9 # test packages run in parallel: one build at a time
  if [ ! -x "$cache/minio" ]; then
    echo "building MinIO $MINIO_VERSION into $cache (once)" >&2
    GOBIN="$cache" GOFLAGS=-buildvcs=false go install "github.com/minio/minio@$MINIO_VERSION" >&2
  fi
  echo "$cache/minio"
  ;;
path)
  echo "$cache/minio"
  ;;
*)
  echo "usage: $0 install|path" >&2
  exit 2
  ;;
esac
