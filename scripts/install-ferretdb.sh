#!/usr/bin/env bash
# Builds FerretDB (a MongoDB wire-protocol server on SQLite) into .cache/ferretdb/bin/ferretdb,
# for machines where no mongod binary can be had. Needs Go; uses only the Go module proxy.
#
# Why not a plain `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2`: the module zip
# lacks build/version/version.txt, so that binary panics at start ("Invalid
# build/version/version.txt file content"). We build the same module source with that file written,
# and with two fixes (below): lookups by _id use the _id index, and a lookup by one other field's
# value (`{product: id}`) uses an index on that field.
#
# It says what it builds, then every FERRETDB_PROGRESS_SECONDS (10) how far go build got.
# FERRETDB_DIR: where to build (default .cache/ferretdb); FERRETDB_VERSION: another version.
set -euo pipefail

version="${FERRETDB_VERSION:-v1.24.2}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${FERRETDB_DIR:-$root/.cache/ferretdb}"
bin="$dest/bin/ferretdb"
# What was built: the version and the fixes applied. A binary with another stamp is built again.
build="$version+sqlite-id-index+field-eq-index"
stamp="$bin.build"

if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$build" ]]; then
  [[ "${1:-}" == "--check" ]] || echo "ferretdb $build already at $bin"
  exit 0
fi
# --check: exit 0 when the binary is built and current, 1 when it must be (re)built.
[[ "${1:-}" == "--check" ]] && exit 1
command -v go >/dev/null || { echo "install-ferretdb: Go is needed to build FerretDB (https://go.dev/dl/)" >&2; exit 1; }
# A progress line this often while go builds (seconds).
interval="${FERRETDB_PROGRESS_SECONDS:-10}"

echo "install-ferretdb: building FerretDB $build into $bin with $(go version | cut -d' ' -f3) (once; about two minutes on two cores)"
echo "install-ferretdb: fetching the source of github.com/FerretDB/FerretDB@$version (go mod download)"
src_dir="$(go mod download -json "github.com/FerretDB/FerretDB@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -d "$src_dir" ]] || { echo "install-ferretdb: go mod download gave no source directory" >&2; exit 1; }

work="$(mktemp -d)"
build_pid=""
trap '[[ -z "$build_pid" ]] || kill "$build_pid" 2>/dev/null; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
cp -R "$src_dir/." "$work/src"
chmod -R u+w "$work/src"
echo "$version" > "$work/src/build/version/version.txt"
# The fix: the SQLite backend finds, updates and deletes a document by `_ferretdb_sjson->'$._id'`,
# but its unique _id index is on `_ferretdb_sjson->"_id"`. SQLite uses an expression index only
# for the same expression, so every lookup by _id scanned the collection, parsing each document's
# JSON (6 ms for 500 products, most of FerretDB's CPU under writes). `->'_id'` means the same path
# and is the index's expression.
metadata="$work/src/internal/backends/sqlite/metadata/metadata.go"
sed -i "s|IDColumn = DefaultColumn + \"->'\$._id'\"|IDColumn = DefaultColumn + \"->'_id'\"|" "$metadata"
grep -q "IDColumn = DefaultColumn + \"->'_id'\"" "$metadata" || { echo "install-ferretdb: the _id index fix no longer applies to $version" >&2; exit 1; }
# The second fix: the SQLite backend pushes down no filter but `{_id: value}`, so a find by any
# other field (`{product: id}`, the reviews of one product) parsed every document of the
# collection (0.3 s for 20,000 reviews) though an index on `_ferretdb_sjson->"product"` was there.
# For a filter that is exactly `{field: <ObjectId or string>}` on a plain top-level name, the
# query gets `WHERE (E = ? OR (E >= '[' AND E < '\'))` with E = `_ferretdb_sjson->'field'`,
# the index's expression (see the _id fix for `->'f'` and `->"f"`), so SQLite searches the index
# instead of scanning.
# - It narrows and never decides: FerretDB's handler still applies the whole filter to the rows
#   that come back (explain keeps filterPushdown false for it; its queryPlanner.Plan shows the
#   index SQLite uses). Rows the SQL lets through that MongoDB would not match (the ObjectId's hex
#   as a string, or the other way round; arrays without the value) are dropped there.
# - It must not drop a row MongoDB would match. `{f: x}` also matches an array that holds x, and
#   `->` gives an array as its JSON text, which never equals x's: hence the second term, every
#   value whose JSON text starts with '[' (all arrays, and only them: the text of a string starts
#   with '"'), a range on the same index. A nested path (`a.b`, which also looks into arrays of
#   documents) and other types (numbers: 1 equals 1.0 in MongoDB, not in JSON text) are left as
#   they were: no pushdown.
cat >"$work/src/internal/backends/sqlite/field_pushdown.go" <<'GO'
package sqlite

import (
	"fmt"
	"regexp"

	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// plainField is a top-level field name (no dot, no $) that needs no quoting in SQL.
var plainField = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// fieldEqualityWhere narrows `{field: <ObjectId|string>}` to the rows whose field has that value
// or is an array, through an index on the field if there is one; "" for any other filter.
// It is a superset of MongoDB's matches: the caller still filters every row.
func fieldEqualityWhere(filter *types.Document) (string, []any) {
	if filter.Len() != 1 {
		return "", nil
	}

	field := filter.Keys()[0]
	if field == "_id" || !plainField.MatchString(field) {
		return "", nil
	}

	v := must.NotFail(filter.Get(field))
	switch v.(type) {
	case string, types.ObjectID:
	default:
		return "", nil
	}

	e := fmt.Sprintf("%s->'%s'", metadata.DefaultColumn, field)
	where := fmt.Sprintf(` WHERE (%[1]s = ? OR (%[1]s >= ? AND %[1]s < ?))`, e)

	return where, []any{string(must.NotFail(sjson.MarshalSingleValue(v))), "[", "\\"}
}
GO
collection="$work/src/internal/backends/sqlite/collection.go"
# In Query and in Explain, when the _id pushdown did not apply (filterPushdown stays as it was).
sed -i 's|^\tq += whereClause$|\tif whereClause == "" {\n\t\twhereClause, args = fieldEqualityWhere(params.Filter)\n\t}\n\n&|' "$collection"
sed -i 's|^\torderByClause := prepareOrderByClause(params.Sort)$|\tif whereClause == "" {\n\t\twhereClause, args = fieldEqualityWhere(params.Filter)\n\t}\n\n&|' "$collection"
[[ "$(grep -c 'fieldEqualityWhere(params.Filter)' "$collection")" == 2 ]] || { echo "install-ferretdb: the field index fix no longer applies to $version" >&2; exit 1; }
mkdir -p "$dest/bin"
# go build says nothing until it is done: it runs in the background with -v (a line per package
# compiled, and one per module downloaded) into a log, and every $interval s we say how far it got.
log="$work/build.log"
echo "install-ferretdb: compiling ./cmd/ferretdb and its dependencies (go build; a progress line every ${interval} s)"
(cd "$work/src" && exec go build -v -trimpath -o "$bin.tmp" ./cmd/ferretdb) >"$log" 2>&1 &
build_pid=$!
started=$SECONDS
next=$((started + interval))
while kill -0 "$build_pid" 2>/dev/null; do
  sleep 1
  if ((SECONDS >= next)) && kill -0 "$build_pid" 2>/dev/null; then
    compiled="$(grep -vc '^go: ' "$log" || true)"
    downloaded="$(grep -c '^go: downloading ' "$log" || true)"
    ((downloaded == 0)) && downloaded="" || downloaded=", $downloaded modules downloaded"
    echo "install-ferretdb: still building after $((SECONDS - started)) s: $compiled packages compiled$downloaded"
    next=$((next + interval))
  fi
done
if ! wait "$build_pid"; then
  build_pid=""
  cat "$log" >&2
  echo "install-ferretdb: go build failed (its output above)" >&2
  exit 1
fi
build_pid=""
mv "$bin.tmp" "$bin"
echo "$build" > "$stamp"
echo "install-ferretdb: ferretdb $build built at $bin in $((SECONDS - started)) s"
