#!/usr/bin/env bash
# Scaling benchmark: how each command's time and memory grow with the node count. For each size in
# SIZES (nodes) it generates the graphs of bench/make_scale_models.py (shared: MatMuls reading one
# weight through their own Identity; transformer: MatMul/Add/Relu/Softmax/Reshape/Transpose blocks;
# gemm: Gemm+Relu blocks with value_info for every tensor) and times `onnxq inspect`, `repack`,
# `quantize --mode dynamic`, `quantize --mode static --ranges` (from the generated ranges file) and
# `calibrate` with ONNX Runtime and with tract. Every run has a timeout, so a quadratic step cannot
# hang the script; a command that timed out at one size is not run at larger sizes. Wall time, CPU
# time (user + system) and peak RSS come from /usr/bin/time -v. Progress goes to stderr, a Markdown
# table to stdout: one cell per size, then the growth of the CPU time between the two largest sizes
# run (about 2x per doubling is linear, 4x quadratic; after a timeout it is a lower bound, ">").
# CPU time is the steadier measure on a shared machine; the engines' own threads add to it.
#
# Usage: cargo build --release -p onnxq-cli && bench/scale.sh
# env: ONNXQ (default $CARGO_TARGET_DIR/release/onnxq, else target/release/onnxq),
#      PY (default .venv/bin/python), SIZES (default "5000 10000 20000 40000"),
#      KINDS (default "shared transformer gemm"),
#      COMMANDS (default "inspect repack dynamic static calib-ort calib-tract"; also "qoperator":
#      static --ranges --format qoperator), TIMEOUT (seconds per run, default 120),
#      MODELS (where generated models are kept and reused, default /tmp/onnxq-scale-models),
#      KEEP_OUTPUT (set to keep each run's output folder and print where it is).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ONNXQ=${ONNXQ:-${CARGO_TARGET_DIR:-$ROOT/target}/release/onnxq}
PY=${PY:-$ROOT/.venv/bin/python}
SIZES=${SIZES:-5000 10000 20000 40000}
KINDS=${KINDS:-shared transformer gemm}
COMMANDS=${COMMANDS:-inspect repack dynamic static calib-ort calib-tract}
TIMEOUT=${TIMEOUT:-120}
MODELS=${MODELS:-/tmp/onnxq-scale-models}
[[ -x $ONNXQ ]] || { echo "no onnxq binary at $ONNXQ (build it, or set ONNXQ=...)" >&2; exit 1; }
OUT=$(mktemp -d /tmp/onnxq-scale.XXXXXX)
if [[ -n ${KEEP_OUTPUT:-} ]]; then
    echo "run outputs kept in $OUT" >&2
else
    trap 'rm -rf "$OUT"' EXIT
fi
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

use_ort_of_py

# Arguments of each command after the model path ($d is the model's folder, $o the output folder).
args_of() {  # COMMAND -> prints nothing, sets CMD (array)
    local m=$d/model.onnx
    case $1 in
        inspect) CMD=("$ONNXQ" inspect "$m") ;;
        repack) CMD=("$ONNXQ" repack "$m" -o "$o/out.onnx" --external-data) ;;
        dynamic) CMD=("$ONNXQ" quantize "$m" -o "$o/out.onnx" --mode dynamic) ;;
        static) CMD=("$ONNXQ" quantize "$m" -o "$o/out.onnx" --mode static --ranges "$d/ranges.json") ;;
        qoperator) CMD=("$ONNXQ" quantize "$m" -o "$o/out.onnx" --mode static --ranges "$d/ranges.json" --format qoperator) ;;
        calib-ort) CMD=("$ONNXQ" calibrate "$m" --data "$d/calib.npz" --engine ort -o "$o/ranges.json") ;;
        calib-tract) CMD=("$ONNXQ" calibrate "$m" --data "$d/calib.npz" --engine tract -o "$o/ranges.json") ;;
        *) echo "unknown command $1" >&2; exit 1 ;;
    esac
}

declare -A CELL CPUS TIMED_OUT NODES
echo "machine: $(nproc) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GB RAM, $(date -Is), timeout ${TIMEOUT} s per run" >&2
for n in $SIZES; do
    if [[ ! -f $MODELS/$n/done ]]; then
        echo "generating graphs of about $n nodes in $MODELS/$n" >&2
        "$PY" "$ROOT/bench/make_scale_models.py" "$n" "$MODELS/$n" --kinds "${KINDS// /,}" >&2 || exit 1
        touch "$MODELS/$n/done"
    fi
    for kind in $KINDS; do
        d=$MODELS/$n/$kind
        NODES[$n,$kind]=$("$PY" -c 'import onnx, sys; print(len(onnx.load(sys.argv[1], load_external_data=False).graph.node))' "$d/model.onnx")
        for c in $COMMANDS; do
            key=$kind,$c
            if [[ -n ${TIMED_OUT[$key]:-} ]]; then
                CELL[$n,$key]="not run (timed out at ${TIMED_OUT[$key]})"
                continue
            fi
            o=$OUT/$n-$kind-$c
            mkdir -p "$o"
            args_of "$c"
            timed timeout --kill-after=10 "$TIMEOUT" "${CMD[@]}"
            cp "$OUT/cmd.txt" "$o/log.txt"
            if ((RC == 124 || RC == 137)); then
                TIMED_OUT[$key]=$n
                CELL[$n,$key]="timeout (>${TIMEOUT} s, cpu ${CPU}), ${RSS} MB"
                CPUS[$key]="${CPUS[$key]:-} $n:$CPU:timeout"
            elif ((RC != 0)); then
                note=$(grep -E "error|panicked" "$OUT/cmd.txt" | head -n 1 | cut -c1-80 | tr '|' '/')
                CELL[$n,$key]="exit $RC: $note"
            else
                CELL[$n,$key]="${WALL} s (cpu ${CPU}), ${RSS} MB"
                CPUS[$key]="${CPUS[$key]:-} $n:$CPU:ok"
            fi
            echo "$kind ($n nodes requested, ${NODES[$n,$kind]} written) $c: ${CELL[$n,$key]}" >&2
            [[ -n ${KEEP_OUTPUT:-} ]] || rm -rf "$o"
        done
    done
done

# Growth of the CPU time between the two largest sizes run (t(n2)/t(n1) for n2/n1 times more
# nodes), a lower bound when the larger one timed out; times under 0.05 s are too coarse.
growth() {  # KEY
    local pts=(${CPUS[$1]:-})
    ((${#pts[@]} >= 2)) || { echo "-"; return; }
    local a=${pts[-2]} b=${pts[-1]}
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, ":"); split(b, y, ":");
        if (x[2] < 0.05 || x[3] != "ok") { print "-"; exit }
        printf "%s%.1fx for %.0fx nodes\n", (y[3] == "ok" ? "" : ">"), y[2] / x[2], y[1] / x[1] }'
}

sizes=($SIZES)
header="| graph | command |"
rule="| --- | --- |"
for n in "${sizes[@]}"; do
    header+=" ${n} nodes |"
    rule+=" ---: |"
done
echo
echo "onnxq: $ONNXQ; wall s (cpu s) and peak RSS MB per run; node counts as written:" \
    "$(for k in $KINDS; do printf '%s ' "$k"; for n in "${sizes[@]}"; do printf '%s ' "${NODES[$n,$k]}"; done; done)"
echo
echo "$header cpu growth |"
echo "$rule --- |"
for kind in $KINDS; do
    for c in $COMMANDS; do
        row="| $kind | $c |"
        for n in "${sizes[@]}"; do
            row+=" ${CELL[$n,$kind,$c]:-} |"
        done
        echo "$row $(growth "$kind,$c") |"
    done
done
