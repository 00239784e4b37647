#!/usr/bin/env bash
# Builds FerretDB (a MongoDB wire-protocol server on SQLite) into .cache/ferretdb/bin/ferretdb,
# for machines where no mongod binary can be had. Needs Go; uses only the Go module proxy.
#
# Why not a plain `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2`: the module zip
# lacks build/version/version.txt, so that binary panics at start ("Invalid
# build/version/version.txt file content"). We build the same module source with that file written.
set -euo pipefail

version="${FERRETDB_VERSION:-v1.24.2}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${FERRETDB_DIR:-$root/.cache/ferretdb}"
bin="$dest/bin/ferretdb"

if [[ -x "$bin" ]] && "$bin" --version 2>/dev/null | grep -q "${version#v}"; then
  echo "ferretdb $version already at $bin"
  exit 0
fi
command -v go >/dev/null || { echo "install-ferretdb: Go is needed to build FerretDB (https://go.dev/dl/)" >&2; exit 1; }

src_dir="$(go mod download -json "github.com/FerretDB/FerretDB@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -d "$src_dir" ]] || { echo "install-ferretdb: go mod download gave no source directory" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -R "$src_dir/." "$work/src"
chmod -R u+w "$work/src"
echo "$version" > "$work/src/build/version/version.txt"
mkdir -p "$dest/bin"
(cd "$work/src" && go build -trimpath -o "$bin.tmp" ./cmd/ferretdb)
mv "$bin.tmp" "$bin"
echo "ferretdb $version built at $bin"
