#!/usr/bin/env bash
# Install the pgvector extension into this machine's PostgreSQL server (Debian), as root.
# Souverain's document libraries keep their vectors in pgvector on PostgreSQL.
#
#   scripts/install-pgvector.sh          # once per server; then `souverain db upgrade`
#
# Debian's binary package is used where the configured suites have it
# (postgresql-NN-pgvector). Debian 12 (bookworm) has none, so then Debian's own source
# package is fetched from the next release's sources (the same archive as the configured
# one) and built against this server's headers: about ten seconds.
set -euo pipefail

version="${PG_VERSION:-$(ls /etc/postgresql 2>/dev/null | sort -n | tail -n 1)}"
[ -n "$version" ] || { echo "no PostgreSQL server found in /etc/postgresql" >&2; exit 1; }
if [ -f "/usr/share/postgresql/$version/extension/vector.control" ]; then
  echo "pgvector is already installed for PostgreSQL $version"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if apt-get install -y -qq "postgresql-$version-pgvector" >/dev/null 2>&1; then
  echo "pgvector installed from postgresql-$version-pgvector"
  exit 0
fi

# The archive this machine already uses, read from its apt sources.
archive=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$archive" ] || archive=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$archive" ] || { echo "cannot find the Debian archive in the apt sources" >&2; exit 1; }

sources=/etc/apt/sources.list.d/souverain-pgvector-src.list
work=$(mktemp -d)
trap 'rm -rf "$work" "$sources"' EXIT
# Each step's output is kept, and shown only if the step fails.
quietly() { "$@" >"$work/step.log" 2>&1 || { cat "$work/step.log" >&2; exit 1; }; }
echo "deb-src $archive trixie main" > "$sources"
quietly apt-get update
quietly apt-get install -y "postgresql-server-dev-$version" dpkg-dev make gcc
cd "$work"
quietly apt-get source pgvector
cd pgvector-*/
# OPTFLAGS="": no -march=native, so the library runs on any x86-64 this server moves to.
quietly make OPTFLAGS="" PG_CONFIG="/usr/lib/postgresql/$version/bin/pg_config"
quietly make install PG_CONFIG="/usr/lib/postgresql/$version/bin/pg_config"
echo "pgvector $(grep default_version "/usr/share/postgresql/$version/extension/vector.control" | cut -d"'" -f2) built and installed for PostgreSQL $version"
