#!/usr/bin/env bash
# Installs what dangan's tests need on a Debian machine, and only what is missing:
#   - OpenSSL 3 (the interoperability tests), poppler-utils (pdftotext, pdffonts, pdfinfo read
#     PDFs back), Chromium (the verification page's browser test);
#   - the converters: Ghostscript, and LibreOffice (Writer, Calc, the UNO bridge for the
#     system Python, a CJK font), without its desktop recommendations;
#   - stress-ng, for the suite's run on a loaded machine (scripts/test.sh --loaded);
#   - SoftHSM2 (the PKCS#11 key provider's test) and gcc (cgo, which the PKCS#11 binding needs);
#   - iproute2 and curl, with which ../shared/scripts/dminio.sh runs the 4-node MinIO cluster;
#   - the pinned MinIO server (scripts/minio.sh; built once into the cache).
# Run as root, or as a user who may sudo. Safe to run again: a prepared machine installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: not root and no sudo: install the Debian packages below as root" >&2; exit 1; }
  as_root=(sudo)
fi

need=()
command -v openssl >/dev/null || need+=(openssl)
command -v pdftotext >/dev/null || need+=(poppler-utils)
command -v chromium >/dev/null || need+=(chromium)
command -v gs >/dev/null || need+=(ghostscript)
command -v stress-ng >/dev/null || need+=(stress-ng)
[ -e /usr/lib/softhsm/libsofthsm2.so ] || need+=(softhsm2)
command -v ip >/dev/null || need+=(iproute2)     # the 4-node MinIO cluster's network namespaces
command -v curl >/dev/null || need+=(curl)       # (../shared/scripts/dminio.sh)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
office=()
dpkg -s libreoffice-writer-nogui >/dev/null 2>&1 || office+=(libreoffice-writer-nogui)
dpkg -s libreoffice-calc-nogui >/dev/null 2>&1 || office+=(libreoffice-calc-nogui)
/usr/bin/python3 -c 'import uno' 2>/dev/null || office+=(python3-uno)
dpkg -s fonts-wqy-zenhei >/dev/null 2>&1 || office+=(fonts-wqy-zenhei)
if [ ${#need[@]} -gt 0 ] || [ ${#office[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]} ${office[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -qq
  [ ${#need[@]} -eq 0 ] || "${as_root[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
  [ ${#office[@]} -eq 0 ] || "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${office[@]}" >/dev/null
fi
{
  openssl version
  pdftotext -v 2>&1 | sed -n 1p
  chromium --version
  echo "Ghostscript $(gs --version)"
  soffice --version
} >&2

# MinIO for the storage tests, pinned; built here so its progress shows and no test waits on it.
bash scripts/minio.sh install >/dev/null

if [ ! -d ../shared/corpus ]; then
  echo "setup: ../shared/corpus is missing: the corpus tests need the shared test corpus beside the checkout" >&2
  exit 1
fi
