#!/usr/bin/env bash
# govulncheck.sh — scan the operator module for known vulnerabilities with govulncheck, using a
# vulnerability database built locally from the Go module proxy.
#
# Why the module proxy: CI and the development machines reach only the Go module proxy (plus
# Debian's and npm's registries), not the vulnerability database's own web host that govulncheck
# queries by default. The database's source repository is itself a Go module, golang.org/x/vulndb,
# and its module zip carries every published report as an OSV file (data/osv/GO-*.json). So:
#   1. govulncheck is built from golang.org/x/vuln at the pinned GOVULNCHECK_VERSION;
#   2. the newest golang.org/x/vulndb the proxy serves (`@latest`, a pseudo-version: the module has
#      no tags) is downloaded, and its data/osv is indexed into the v1 database layout that
#      `govulncheck -db file:///…` reads (index/db.json, index/modules.json, index/vulns.json,
#      ID/<GO-ID>.json) by vulndb's own cmd/indexdb, built at the pinned INDEXDB_VERSION;
#   3. the OSV files carry no modified dates (upstream adds them when it publishes), so
#      index/db.json gets the vulndb commit time: that is the age of the data, printed below. A
#      database older than MPO_VULNDB_MAX_AGE_DAYS (60) fails the run (exit 4) before anything is
#      scanned, as does one whose age cannot be read: "no vulnerabilities found" in a database
#      nobody has updated for months would be a false all-clear;
#   4. govulncheck runs in its default (symbol) mode on the repository root and exits non-zero
#      (3) when our code reaches a vulnerable symbol; exit 0 means nothing reachable was found.
# All of it is cached under
#   ${MPO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/marketplace-operator}/govulncheck/
# The tools are rebuilt only when a pinned version or the Go version changes; the database only
# when the proxy serves a newer vulndb (a ~25 MB module zip; indexing it takes seconds). The first
# run builds indexdb, whose module pulls in ~100 cloud dependencies (~1-2 min of CPU); after that a
# run is the scan itself (~1-1.5 min of CPU on 2 cores for this repository).
#
# If the proxy cannot be asked for @latest, the cached database is used, with a warning, as long as
# it is not older than MPO_VULNDB_MAX_AGE_DAYS.
#
# hack/k8s is not scanned: it is only a wrapper module pinning the Kubernetes/etcd sources that
# hack/control-plane.sh builds for local and test clusters; none of it ships in the operator.
# Its only file is behind the `tools` build tag and imports programs, so govulncheck cannot load
# it as packages (even with -scan module). To look at those test-only binaries anyway:
#   hack/govulncheck.sh -mode binary "$(hack/control-plane.sh)/kube-apiserver"
#
# usage: hack/govulncheck.sh [govulncheck args]   (default args: ./...; e.g. -show verbose ./...)
#        With -format json/sarif/openvex, govulncheck exits 0 whatever it finds.
# env:   MPO_VULNDB_VERSION=<version>   use that golang.org/x/vulndb version instead of @latest
#        MPO_VULNDB_MAX_AGE_DAYS=<days>  the oldest database accepted, in days (default 60)
# exit:  0 nothing reachable found; 3 vulnerabilities reachable; 4 database too old (or its age
#        unknown); 2 no database or bad usage; anything else: govulncheck or a build failed
set -euo pipefail

GOVULNCHECK_VERSION=v1.9.0                             # golang.org/x/vuln/cmd/govulncheck
INDEXDB_VERSION=v0.0.0-20261105234957-e22db6528018     # golang.org/x/vulndb/cmd/indexdb
VULNDB_QUERY=${MPO_VULNDB_VERSION:-latest}             # the data: newest the proxy serves
MAX_AGE_DAYS=${MPO_VULNDB_MAX_AGE_DAYS:-60}            # the oldest data accepted

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CACHE=${MPO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/marketplace-operator}/govulncheck
say() { echo "govulncheck.sh: $*" >&2; }
case $MAX_AGE_DAYS in
  '' | *[!0-9]* | 0) say "MPO_VULNDB_MAX_AGE_DAYS must be a whole number of days, at least 1 (got '$MAX_AGE_DAYS')"; exit 2 ;;
esac

mkdir -p "$CACHE"
SCRATCH=$(mktemp -d "$CACHE/tmp.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
# Tool builds and downloads run outside any module, so the repo's go.mod/go.sum are never touched.
outside() { (cd "$SCRATCH" && GOWORK=off GOFLAGS=-buildvcs=false "$@"); }

# --- 1. tools, keyed by Go version so that a Go upgrade rebuilds them ------------------------------
# govulncheck itself is installed after the database's age is checked (step 3).
GOVERSION=$(go env GOVERSION)
BIN=$CACHE/bin/$GOVERSION
GOVULNCHECK=$BIN/govulncheck-$GOVULNCHECK_VERSION
INDEXDB=$BIN/indexdb-$INDEXDB_VERSION
install_tool() { # <pkg@version> <name> <dest>
  [ -x "$3" ] && return 0
  say "building $1 (once per version) ..."
  mkdir -p "$SCRATCH/bin" "$BIN"
  outside env GOBIN="$SCRATCH/bin" go install "$1"
  mv "$SCRATCH/bin/$2" "$3"
}

# --- 2. database from the newest golang.org/x/vulndb served by the module proxy --------------------
DB=$CACHE/db
STAMP_FILE=$DB/.stamp
field() { sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}\$/\1/p" <<<"$2" | head -n1; }
if JSON=$(outside go mod download -json "golang.org/x/vulndb@$VULNDB_QUERY" 2>&1); then
  VULNDB_VERSION=$(field Version "$JSON")
  VULNDB_DIR=$(field Dir "$JSON")
  VULNDB_TIME=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$(field Info "$JSON")")
  STAMP="vulndb=$VULNDB_VERSION indexdb=$INDEXDB_VERSION"
  if [ ! -f "$STAMP_FILE" ] || [ "$(cat "$STAMP_FILE")" != "$STAMP" ]; then
    install_tool "golang.org/x/vulndb/cmd/indexdb@$INDEXDB_VERSION" indexdb "$INDEXDB"
    say "indexing golang.org/x/vulndb@$VULNDB_VERSION ($(find "$VULNDB_DIR/data/osv" -name 'GO-*.json' | wc -l) reports) ..."
    "$INDEXDB" -vulns "$VULNDB_DIR/data/osv" -out "$SCRATCH/db"
    printf '{"modified":"%s"}' "$VULNDB_TIME" >"$SCRATCH/db/index/db.json"
    gzip -9nc "$SCRATCH/db/index/db.json" >"$SCRATCH/db/index/db.json.gz"
    echo "$STAMP" >"$SCRATCH/db/.stamp"
    rm -rf "$DB" && mv "$SCRATCH/db" "$DB"
  fi
elif [ -f "$STAMP_FILE" ]; then
  say "WARNING: could not resolve golang.org/x/vulndb@$VULNDB_QUERY; using the cached database:"
  echo "$JSON" >&2
  VULNDB_VERSION=$(sed -n 's/^vulndb=\([^ ]*\).*/\1/p' "$STAMP_FILE")
else
  echo "$JSON" >&2
  say "cannot get golang.org/x/vulndb@$VULNDB_QUERY from the module proxy, and no database is cached"
  exit 2
fi

MODIFIED=$(sed -n 's/.*"modified":"\([^"]*\)".*/\1/p' "$DB/index/db.json" 2>/dev/null || true)
# The proxy's times are RFC 3339 in UTC (2026-11-05T23:49:57Z); parsed by GNU date, else BSD date.
THEN=
if [[ $MODIFIED =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$ ]]; then
  THEN=$(date -u -d "$MODIFIED" +%s 2>/dev/null || date -u -j -f '%Y-%m-%dT%H:%M:%SZ' "$MODIFIED" +%s 2>/dev/null || true)
fi
if [ -z "$THEN" ]; then
  say "cannot tell when the vulnerability database was last modified (index/db.json: '$MODIFIED');"
  say "refusing to scan with data of unknown age. Remove $DB to rebuild it."
  exit 4
fi
AGE_DAYS=$(( ($(date -u +%s) - THEN) / 86400 ))
AGE=" ($AGE_DAYS days old)"
say "govulncheck $GOVULNCHECK_VERSION, $GOVERSION, database golang.org/x/vulndb@$VULNDB_VERSION"
say "database last modified $MODIFIED$AGE"
if [ "$AGE_DAYS" -gt "$MAX_AGE_DAYS" ]; then
  say "the vulnerability database is $AGE_DAYS days old, older than $MAX_AGE_DAYS days (MPO_VULNDB_MAX_AGE_DAYS):"
  say "a scan against it would miss what has been published since. Check that the module proxy is"
  say "reachable (a cached database is used when it is not) and MPO_VULNDB_VERSION unset; raise"
  say "MPO_VULNDB_MAX_AGE_DAYS only knowingly."
  exit 4
fi

# --- 3. scan ---------------------------------------------------------------------------------------
install_tool "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION" govulncheck "$GOVULNCHECK"
[ $# -gt 0 ] || set -- ./...
cd "$ROOT"
rc=0
"$GOVULNCHECK" -db "file://$DB" "$@" || rc=$?
fmt=text prev=
for a in "$@"; do
  case $prev in -format|--format) fmt=$a ;; esac
  case $a in -format=*|--format=*) fmt=${a#*=} ;; -json|--json) fmt=json ;; esac
  prev=$a
done
case $rc in
  0) if [ "$fmt" = text ]; then say "no reachable vulnerabilities found"
     else say "done (in -format $fmt govulncheck exits 0 even when it finds vulnerabilities)"; fi ;;
  3) say "vulnerabilities reachable from our code (see above); database modified $MODIFIED$AGE" ;;
  *) say "govulncheck failed (exit $rc)" ;;
esac
exit "$rc"
