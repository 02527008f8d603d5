#!/usr/bin/env bash
# Benchmark dynamic quantization side by side on one machine: `onnxq quantize --mode dynamic` against
# ONNX Runtime's `quantize_dynamic` (defaults: int8 per-tensor weights), on minilm-l6-v2 and the 2.54 GB
# synthetic model (bench/make_big.sh). Each command runs $RUNS times (default 2) into an emptied folder;
# wall time and max RSS come from /usr/bin/time -v. Prints a Markdown table; raw output goes to $LOG.
#
# Usage: bench/make_big.sh && cargo build --release -p onnxq-cli && bench/quantize_dynamic.sh
# env: BIG_DIR (default /tmp/onnxq-big/synth-2p5g), ONNXQ (default target/release/onnxq),
#      PY (default .venv/bin/python), RUNS (default 2), LOG (default /tmp/onnxq-qdyn-<time>.log)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIG_DIR=${BIG_DIR:-/tmp/onnxq-big/synth-2p5g}
ONNXQ=${ONNXQ:-$ROOT/target/release/onnxq}
PY=${PY:-$ROOT/.venv/bin/python}
RUNS=${RUNS:-2}
LOG=${LOG:-/tmp/onnxq-qdyn-$(date +%Y%m%d-%H%M%S).log}
[[ -x $ONNXQ ]] || { echo "no onnxq at $ONNXQ (cargo build --release -p onnxq-cli)" >&2; exit 1; }
OUT=$(mktemp -d /tmp/onnxq-qdyn.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

# ORT's tool writes <stem>-inferred.onnx beside its input. A model without external data runs from a
# folder of links (the corpus stays untouched); onnx refuses external data behind links, so the big
# model runs in place (its folder is a scratch folder).
PY_ORT='import os, sys, tempfile
from onnxruntime.quantization import quantize_dynamic
src, out = sys.argv[1], sys.argv[2]
folder = os.path.dirname(src)
external = any(e.endswith(".data") for e in os.listdir(folder))
if external:
    quantize_dynamic(src, out, use_external_data_format=True)
else:
    with tempfile.TemporaryDirectory() as d:
        for e in os.listdir(folder):
            os.symlink(os.path.join(folder, e), os.path.join(d, e))
        quantize_dynamic(os.path.join(d, os.path.basename(src)), out)'

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
rows=()
measure() {  # LABEL CMD...
    local label=$1 run wall rss rc
    shift
    for run in $(seq "$RUNS"); do
        rm -rf "$OUT/o" && mkdir -p "$OUT/o"
        timed "$@"
        rc=$RC wall=$WALL rss=$RSS
        { echo "## $label, run $run: $*"; cat "$OUT/cmd.txt" "$OUT/time.txt"; echo; } >>"$LOG"
        rows+=("| $label | $run | $wall | $rss | $rc |")
        echo "$label, run $run: ${wall} s, ${rss} MB, exit $rc" >&2
    done
}

echo "machine: $(nproc) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GB RAM, $(date -Is), onnxruntime $("$PY" -c 'import onnxruntime; print(onnxruntime.__version__)')"
for model in "$ROOT/../shared/corpus/models/minilm-l6-v2/model.onnx" "$BIG_DIR/model.onnx"; do
    name=$(basename "$(dirname "$model")")
    measure "onnxq quantize --mode dynamic ($name)" "$ONNXQ" quantize "$model" -o "$OUT/o/model.onnx" --mode dynamic
    measure "ORT quantize_dynamic ($name)" "$PY" -c "$PY_ORT" "$model" "$OUT/o/model.onnx"
done
echo
echo "| command | run | wall s | max RSS MB | exit |"
echo "| --- | ---: | ---: | ---: | ---: |"
printf '%s\n' "${rows[@]}"
echo
echo "raw output: $LOG"
