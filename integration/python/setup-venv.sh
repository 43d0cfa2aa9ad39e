#!/usr/bin/env bash
# Installs pymesos 0.3.15, the unmodified Mesos v1 HTTP scheduler library the conformance tests
# (integration/tests/pymesos.rs) run against Strata, into a virtualenv: integration/python/.venv,
# or $STRATA_PYMESOS_VENV when set.
#
# pymesos depends on `http-parser`, whose C extension does not build on current Pythons; the
# package also ships a pure-Python parser (`http_parser/pyparser.py`) that `http_parser.http`
# falls back to. So pymesos, six and addict are installed without their dependencies, and only
# the Python files of the http-parser source package are copied into the virtualenv.
set -euo pipefail
cd "$(dirname "$0")"
venv=${STRATA_PYMESOS_VENV:-"$PWD/.venv"}

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import pymesos, addict, http_parser.http' 2>/dev/null; then
  exit 0
fi

if ! python3 -m venv "$venv" >/dev/null 2>&1; then
  # Debian ships venv support in a package of its own.
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3-venv python3-pip >/dev/null
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
  pymesos==0.3.15 six==1.17.0 addict==2.4.0

download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT
"$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
  http-parser==0.9.0 -d "$download"
tar xzf "$download/http-parser-0.9.0.tar.gz" -C "$download"
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir -p "$site/http_parser"
cp "$download"/http-parser-0.9.0/http_parser/*.py "$site/http_parser/"

"$venv/bin/python" -c 'import pymesos, addict, http_parser.http'
