#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: makes the Python oracle venv (.venv, ONNX Runtime
# 1.31.1 + onnx + numpy + onnx_ir + sympy) if it is missing or stale, and the SmoothQuant oracle's side venv
# (.venv-inc, tests/py/requirements-inc.txt), then `cargo test` over the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
# The tests read the real models of the corpus: say where it must be before anything is built.
corpus="${ONNXQ_CORPUS:-../shared/corpus}"
if [ ! -d "$corpus/models" ]; then
  echo "error: the test corpus is missing: no folder $corpus/models" >&2
  echo "hint: put the corpus at ../shared/corpus beside the repository, or set ONNXQ_CORPUS to its folder, then run: bash scripts/test.sh" >&2
  exit 2
fi
want='import onnxruntime, onnx, numpy, onnx_ir, sympy; assert onnxruntime.__version__ == "1.31.1", onnxruntime.__version__'
if ! .venv/bin/python -c "$want" 2>/dev/null; then
  echo "making the test oracle venv in .venv" >&2
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/py/requirements.txt
  .venv/bin/python -c "$want"
fi
# The SmoothQuant oracle (Intel Neural Compressor 3.7.1) needs numpy<2: a side venv, pinned whole.
want_inc='import neural_compressor.adaptor.ox_utils.smooth_quant, onnxruntime; assert onnxruntime.__version__ == "1.31.1"'
if ! .venv-inc/bin/python -c "$want_inc" 2>/dev/null; then
  echo "making the SmoothQuant oracle venv in .venv-inc" >&2
  python3 -m venv .venv-inc
  .venv-inc/bin/pip install --quiet --disable-pip-version-check --no-deps -r tests/py/requirements-inc.txt
  .venv-inc/bin/python -c "$want_inc"
fi
cargo test --workspace --locked "$@"
