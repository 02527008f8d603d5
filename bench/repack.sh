#!/usr/bin/env bash
# Benchmark repacking the big model, side by side on one machine: onnxq repack (external -> external;
# external -> inline up to 2 GB) against onnx's Python load + save (with external data; as one file, which
# is expected to fail on the 2 GB protobuf limit). Each command runs $RUNS times (default 2) into an emptied
# folder; wall time and max RSS come from /usr/bin/time -v. The page cache is not dropped, so run 1 of the
# first command may read the model from disk. Prints a Markdown table on stdout, progress on stderr, and
# appends each command's output and raw /usr/bin/time -v lines to $LOG.
#
# Usage: bench/make_big.sh && bench/repack.sh
# env: BIG_DIR (default /tmp/onnxq-big/synth-2p5g), MODEL (default $BIG_DIR/model.onnx),
#      ONNXQ (default target/release/onnxq; the onnxq rows are skipped if it is missing),
#      PY (default .venv/bin/python), RUNS (default 2), LOG (default /tmp/onnxq-repack-<time>.log)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIG_DIR=${BIG_DIR:-/tmp/onnxq-big/synth-2p5g}
MODEL=${MODEL:-$BIG_DIR/model.onnx}
ONNXQ=${ONNXQ:-$ROOT/target/release/onnxq}
PY=${PY:-$ROOT/.venv/bin/python}
RUNS=${RUNS:-2}
LOG=${LOG:-/tmp/onnxq-repack-$(date +%Y%m%d-%H%M%S).log}
[[ -f $MODEL ]] || { echo "no model at $MODEL (run bench/make_big.sh, or set MODEL=...)" >&2; exit 1; }
OUT=$(mktemp -d /tmp/onnxq-repack.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

PY_EXT='import sys, onnx
m = onnx.load(sys.argv[1])
onnx.save_model(m, sys.argv[2], save_as_external_data=True, all_tensors_to_one_file=True, location="model.onnx.data")'
PY_ONE='import sys, onnx
onnx.save_model(onnx.load(sys.argv[1]), sys.argv[2])'

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
rows=()
# measure LABEL SUBDIR CMD...: run CMD $RUNS times, emptying $OUT/SUBDIR first; one table row per run
measure() {
    local label=$1 dir=$OUT/$2 run rc wall rss size note
    shift 2
    for run in $(seq "$RUNS"); do
        rm -rf "$dir" && mkdir -p "$dir"
        timed "$@"
        rc=$RC wall=$WALL rss=$RSS
        { echo "## $label, run $run: $*"; cat "$OUT/cmd.txt" "$OUT/time.txt"; echo; } >>"$LOG"
        size=$(du -sb "$dir" | awk '{printf "%.1f", $1 / 1e6}')
        note=""
        ((rc == 0)) || note=$(grep -v '^[[:space:]]*$' "$OUT/cmd.txt" | tail -n 1 | cut -c1-200 | tr '|' '/')
        rows+=("| $label | $run | $wall | $rss | $rc | $size | $note |")
        echo "$label, run $run: ${wall} s, ${rss} MB, exit $rc" >&2
    done
    rm -rf "$dir"
}

echo "machine: $(nproc) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GB RAM total, $(date -Is)"
echo "model: $MODEL ($(du -sb --apparent-size "$(dirname "$MODEL")" | awk '{printf "%.2f", $1 / 1e9}') GB folder)"
echo
if [[ -x $ONNXQ ]]; then
    measure "onnxq repack --external-data" ext "$ONNXQ" repack "$MODEL" -o "$OUT/ext/model.onnx" --external-data
    measure "onnxq repack --inline" inl "$ONNXQ" repack "$MODEL" -o "$OUT/inl/model.onnx" --inline
else
    echo "skipping the onnxq rows: $ONNXQ is not an executable (cargo build --release, or set ONNXQ=...)"
    rows+=("| onnxq repack --external-data / --inline | - | - | - | - | - | skipped: $ONNXQ not found |")
fi
measure "python onnx.load + save_model (external data)" pyext "$PY" -c "$PY_EXT" "$MODEL" "$OUT/pyext/model.onnx"
measure "python onnx.load + save_model (one file)" pyone "$PY" -c "$PY_ONE" "$MODEL" "$OUT/pyone/model.onnx"

echo "| command | run | wall s | max RSS MB | exit code | output MB | note |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | --- |"
printf '%s\n' "${rows[@]}"
echo
echo "raw /usr/bin/time -v output: $LOG"
