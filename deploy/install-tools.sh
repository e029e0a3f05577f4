#!/usr/bin/env bash
# Installs the system tools govbus needs when they are missing: a Java runtime (the Kafka broker),
# Maven (fetches the broker's jars), a C compiler and Python's headers (the publisher's optional C
# encoder, schemas/_avro_fast.c) and, with --postgres, the PostgreSQL server the tests start and, with
# --wrk, the HTTP load generator `govbus bench gateway` drives (options combine: --postgres --wrk).
# Uses Debian's packages; needs root or passwordless sudo.
set -euo pipefail

postgres=false
wrk=false
for option in "$@"; do
  case "$option" in
    --postgres) postgres=true ;;
    --wrk) wrk=true ;;
    *) echo "error: unknown option $option (expected --postgres, --wrk)" >&2; exit 2 ;;
  esac
done

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
python=${PYTHON:-python3}
if ! "$python" -c 'import os, sysconfig; raise SystemExit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))' 2>/dev/null; then
  missing+=(python3-dev)
fi
if $postgres && ! compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then
  missing+=(postgresql)
fi
if $wrk && ! command -v wrk >/dev/null 2>&1; then
  missing+=(wrk)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "==> installing ${missing[*]} from Debian's packages"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "error: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
  sudo="sudo -n"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
