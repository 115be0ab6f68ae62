#!/bin/sh
# Copies the pinned pdfjs-dist into console/static/pdfjs: the library, its worker, the CMaps
# (Chinese PDFs that do not embed their fonts need them), the standard fonts, the image
# decoders' WebAssembly and the licences. The files are committed, so building dangan needs
# neither npm nor a network; run this only to move to another version, and change both
# lines below.
set -eu
VERSION=6.5.438
SHA256=7461aefcd27c4ef0dd76f9ca5760f09466eb6b3f934432670c12132e7b3d6faa
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "pdfjs-dist@$VERSION" >/dev/null)
echo "$SHA256  $tmp/pdfjs-dist-$VERSION.tgz" | sha256sum -c -
tar -xzf "$tmp/pdfjs-dist-$VERSION.tgz" -C "$tmp"
dst=console/static/pdfjs
rm -rf "$dst"
mkdir -p "$dst"
cp "$tmp/package/build/pdf.min.mjs" "$tmp/package/build/pdf.worker.min.mjs" "$tmp/package/LICENSE" "$dst/"
cp -r "$tmp/package/cmaps" "$tmp/package/standard_fonts" "$tmp/package/wasm" "$tmp/package/iccs" "$dst/"
echo "pdfjs-dist $VERSION (npm), sha256 $SHA256" > "$dst/VERSION"
echo "console/static/pdfjs: pdfjs-dist $VERSION"
