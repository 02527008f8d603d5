#!/usr/bin/env bash
# Benchmark weight-only quantization side by side on one machine: `onnxq quantize --mode weight-only`
# against ONNX Runtime's MatMulNBitsQuantizer (DEFAULT algorithm, 4 bits, asymmetric, blocks of 32 and 128,
# in the QOperator (MatMulNBits) and QDQ (blocked DequantizeLinear) formats), on the 2.54 GB synthetic model (bench/make_big.sh), plus the time to `cp` its data file
# once. Each command runs $RUNS times (default 2) into an emptied folder; wall time, CPU time and max RSS
# come from /usr/bin/time -v. Prints a Markdown table; raw output goes to $LOG.
#
# Usage: bench/make_big.sh && cargo build --release -p onnxq-cli && bench/weight_only.sh
# env: BIG_DIR (default /tmp/onnxq-big/synth-2p5g), ONNXQ (default target/release/onnxq),
#      PY (default .venv/bin/python), RUNS (default 2), LOG (default /tmp/onnxq-wo-<time>.log),
#      FORMATS (default "qoperator qdq")
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIG_DIR=${BIG_DIR:-/tmp/onnxq-big/synth-2p5g}
ONNXQ=${ONNXQ:-$ROOT/target/release/onnxq}
PY=${PY:-$ROOT/.venv/bin/python}
RUNS=${RUNS:-2}
FORMATS=${FORMATS:-qoperator qdq}
LOG=${LOG:-/tmp/onnxq-wo-$(date +%Y%m%d-%H%M%S).log}
[[ -x $ONNXQ ]] || { echo "no onnxq at $ONNXQ (cargo build --release -p onnxq-cli)" >&2; exit 1; }
OUT=$(mktemp -d /tmp/onnxq-wo.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

PY_ORT='import logging, sys
import onnx
from onnxruntime.quantization import QuantFormat
from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer
logging.disable(logging.WARNING)
src, out, block, fmt = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
fmt = QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator
algo = DefaultWeightOnlyQuantConfig(block_size=block, is_symmetric=False, quant_format=fmt, bits=4)
q = MatMulNBitsQuantizer(onnx.load(src), bits=4, block_size=block, is_symmetric=False, algo_config=algo)
q.process()
q.model.save_model_to_file(out, True)'

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
rows=()

echo "machine: $(nproc) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GB RAM, $(date -Is), onnxruntime $("$PY" -c 'import onnxruntime; print(onnxruntime.__version__)')"
model=$BIG_DIR/model.onnx
measure_runs "cp model.onnx.data" cp "$BIG_DIR/model.onnx.data" "$OUT/o/copy.data"
for fmt in $FORMATS; do
    for block in 32 128; do
        measure_runs "onnxq weight-only $fmt, block $block" "$ONNXQ" quantize "$model" -o "$OUT/o/model.onnx" \
            --mode weight-only --format "$fmt" --block-size "$block"
        measure_runs "ORT MatMulNBitsQuantizer $fmt, block $block" "$PY" -c "$PY_ORT" "$model" "$OUT/o/model.onnx" \
            "$block" "$fmt"
    done
done
echo
echo "| command | run | wall s | CPU s | max RSS MB | exit |"
echo "| --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
