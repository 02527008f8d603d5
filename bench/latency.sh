#!/usr/bin/env bash
# Latency and corpus metric of quantized models in ONNX Runtime, onnxq against ONNX Runtime's own
# tool. Per model of MODELS: dynamic (onnxq --mode dynamic; quantize_dynamic), static QDQ S8S8
# (the default; --mode static --data calib.npz --engine ort; quantize_static), static QDQ U8S8
# (--activation-type uint8) and static QOperator S8S8 (--format qoperator) and U8S8, both tools calibrating
# on the model's calib.npz. The float model and every model produced are timed in ONE
# `onnxq bench` call (interleaved runs, every graph optimization, THREADS intra-op threads, sample 0
# of calib.npz) and scored by ../shared/corpus/eval/<model>.py (float: data/<model>/float_metric.txt).
# A quantization that fails is a row saying why (its first error line). Then a cross-check: the
# float model and one quantized model (XCHECK, default onnxq's static QDQ U8S8) of the first model
# timed by a plain Python loop (tests/py/time_session.py: same session settings, sample, runs) next
# to onnxq bench's medians. Prints Markdown on stdout (progress on stderr): the table, the load
# average at each bench call, the op types of every quantized model slower than float.
# Usage: cargo build --release -p onnxq-cli && bench/latency.sh
# env: ONNXQ (default target/release/onnxq), PY (default .venv/bin/python), CORPUS, MODELS (default
#      mobilenetv2 minilm-l6-v2 ppocr-rec digits-cnn bytegpt), RUNS (default 40), WARMUP (5),
#      THREADS (1), XCHECK ("variant|tool" of the cross-checked model), ORT_DYLIB_PATH (default:
#      PY's onnxruntime), KEEP=DIR (keep the quantized models and bench JSON in DIR)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ONNXQ=${ONNXQ:-$ROOT/target/release/onnxq}
PY=${PY:-$ROOT/.venv/bin/python}
CORPUS=${CORPUS:-$ROOT/../shared/corpus}
MODELS=${MODELS:-mobilenetv2 minilm-l6-v2 ppocr-rec digits-cnn bytegpt}
RUNS=${RUNS:-40}
WARMUP=${WARMUP:-5}
THREADS=${THREADS:-1}
XCHECK=${XCHECK:-static QDQ U8S8|onnxq}
if [[ -n ${KEEP:-} ]]; then
    OUT=$KEEP && mkdir -p "$OUT"
else
    OUT=$(mktemp -d /tmp/onnxq-latency.XXXXXX)
    trap 'rm -rf "$OUT"' EXIT
fi
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
use_ort_of_py
export ONNXQ_PYTHON=$PY
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
load() { uptime | sed 's/.*load average: *//'; }

# variant | onnxq flags | ort_quantize.py mode and flags (CALIB = the model's calib.npz)
VARIANTS=(
    "dynamic|--mode dynamic|dynamic"
    "static QDQ S8S8|--mode static --data CALIB --engine ort|static --data CALIB"
    "static QDQ U8S8|--mode static --data CALIB --engine ort --activation-type uint8|static --data CALIB --activation-type uint8"
    "QOperator S8S8|--mode static --data CALIB --engine ort --format qoperator|static --data CALIB --format qoperator"
    "QOperator U8S8|--mode static --data CALIB --engine ort --format qoperator --activation-type uint8|static --data CALIB --format qoperator --activation-type uint8"
)

# row_files: files = the model file of every row that has one (rows[i] = "variant|tool|metric|file|why")
row_files() {
    files=()
    local r f
    for r in "${rows[@]}"; do
        IFS='|' read -r _ _ _ f _ <<<"$r"
        [[ -n $f ]] && files+=("$f")
    done
}

# ms FLOAT: 3 significant figures' worth of decimals (digits-cnn runs in tens of microseconds)
ms() { awk -v x="$1" 'BEGIN { if (x < 1) printf "%.3f", x; else if (x < 100) printf "%.2f", x; else printf "%.1f", x }'; }

# bench_json JSON INDEX: "median|p10|p90|speedup" of model INDEX in an onnxq-bench/1 file
bench_json() {
    "$PY" -c 'import json, sys
m = json.load(open(sys.argv[1]))["models"][int(sys.argv[2])]
print(m["median_ms"], m["p10_ms"], m["p90_ms"], m["speedup"], sep="|")' "$1" "$2"
}

# op_types MODEL: "Op×count" of MODEL's main graph, most frequent first
op_types() {
    "$PY" -c 'import collections, onnx, sys
c = collections.Counter(n.op_type for n in onnx.load(sys.argv[1], load_external_data=False).graph.node)
print(", ".join(f"{o}×{k}" for o, k in c.most_common()))' "$1"
}

echo "| model | variant | tool | metric | median ms (p10–p90) | speed vs float |"
echo "| --- | --- | --- | --- | ---: | ---: |"
loads=()
slow=()
xcheck_rows=()
first=1
for m in $MODELS; do
    src=$CORPUS/models/$m/model.onnx
    calib=$CORPUS/data/$m/calib.npz
    dir=$OUT/$m
    rm -rf "$dir" && mkdir -p "$dir"
    # rows[i] = "variant|tool|metric|model file or empty|why it failed"
    rows=("float|—|$(cat "$CORPUS/data/$m/float_metric.txt")|$src|")
    i=0
    for v in "${VARIANTS[@]}"; do
        i=$((i + 1))
        label=${v%%|*}; rest=${v#*|}
        ours_flags=${rest%%|*}; ort_args=${rest#*|}
        ours_flags=${ours_flags//CALIB/$calib}; ort_args=${ort_args//CALIB/$calib}
        # onnxq
        q=$dir/onnxq-$i.onnx
        log "$m: onnxq $label"
        # shellcheck disable=SC2086
        if "$ONNXQ" quantize "$src" -o "$q" $ours_flags >"$dir/onnxq-$i.txt" 2>&1; then
            s=$(score "$m" "$q")
            rows+=("$label|onnxq|${s:-model does not run}|$q|")
        else
            why=$(grep -m1 -i error "$dir/onnxq-$i.txt" || head -n 1 "$dir/onnxq-$i.txt")
            why=${why//|//}
            rows+=("$label|onnxq|||fails: ${why:0:120}")
        fi
        # ONNX Runtime's tool
        q=$dir/ort-$i.onnx
        log "$m: ORT $label"
        mode=${ort_args%% *}; ort_flags=${ort_args#"$mode"}
        # shellcheck disable=SC2086
        if "$PY" "$ROOT/tests/py/ort_quantize.py" "$mode" "$src" "$q" $ort_flags >"$dir/ort-$i.txt" 2>&1; then
            s=$(score "$m" "$q")
            rows+=("$label|ORT quantize_$mode|${s:-model does not run}|$q|")
        else
            why=$(grep -m1 ort-failed "$dir/ort-$i.txt" | cut -c13-) || true
            [[ -n $why ]] || why=$(grep -v '^\s*$' "$dir/ort-$i.txt" | tail -n 1)
            why=${why//|//}
            rows+=("$label|ORT quantize_$mode|||fails: ${why:0:120}")
        fi
    done

    # One interleaved bench call over float + every model produced. A model bench cannot run
    # (e.g. ORT refuses to load it) would fail the call: find those with one quick call each.
    row_files
    bench() { "$ONNXQ" bench "$@" --data "$calib" --threads "$THREADS" --runs "$RUNS" --warmup "$WARMUP" --json "$dir/bench.json"; }
    log "$m: bench ${#files[@]} models, $RUNS runs (load $(load))"
    loads+=("$m: $(load) (1/5/15 min) at the bench call")
    if ! bench "${files[@]}" >"$dir/bench.txt" 2>&1; then
        for j in "${!rows[@]}"; do
            IFS='|' read -r a b c f e <<<"${rows[$j]}"
            [[ -z $f || $f == "$src" ]] && continue
            if ! "$ONNXQ" bench "$f" --data "$calib" --runs 1 --warmup 0 >"$dir/one.txt" 2>&1; then
                why=$(grep -m1 -i error "$dir/one.txt" | cut -c1-120)
                rows[j]="$a|$b|$c||bench fails: ${why//|//}"
            fi
        done
        row_files
        bench "${files[@]}" >"$dir/bench.txt" 2>&1 || log "$m: bench fails: $(head -n 3 "$dir/bench.txt")"
    fi
    k=0
    for r in "${rows[@]}"; do
        IFS='|' read -r label tool metric f why <<<"$r"
        if [[ -n $why ]]; then
            echo "| $m | $label | $tool | $why | — | — |"
            continue
        fi
        if [[ -s $dir/bench.json ]] && t=$(bench_json "$dir/bench.json" "$k" 2>/dev/null); then
            IFS='|' read -r med p10 p90 sp <<<"$t"
            time="$(ms "$med") ($(ms "$p10")–$(ms "$p90"))"
            speed=$(awk -v s="$sp" 'BEGIN { printf "%.2f×", s }')
            if [[ $tool != — ]] && awk -v s="$sp" 'BEGIN { exit !(s < 1) }'; then
                slow+=("$m, $label, $tool ($speed): $(op_types "$f")")
            fi
            if ((first)) && [[ "$label|$tool" == "$XCHECK" || $tool == — ]]; then
                xcheck_rows+=("$label|$tool|$f|$med")
            fi
        else
            time="bench fails"; speed="—"
        fi
        echo "| $m | $label | $tool | $metric | $time | $speed |"
        k=$((k + 1))
    done
    first=0
done

echo
echo "Load average (uptime, 1/5/15 min) when each model's bench call started:"
echo
for l in "${loads[@]}"; do echo "- $l"; done

if ((${#slow[@]})); then
    echo
    echo "Quantized models slower than float, with their op types (the model as written, before ORT's fusions):"
    echo
    for s in "${slow[@]}"; do echo "- $s"; done
fi

# Cross-check: a plain Python loop (same session settings, sample 0, runs and warm-up) on the
# first model's float model and the XCHECK model, run after the bench call, one model at a time.
m=${MODELS%% *}
if ((${#xcheck_rows[@]})); then
    echo
    echo "Cross-check on $m: \`onnxq bench\` (interleaved) against tests/py/time_session.py (a plain Python loop, one model at a time, run afterwards; $THREADS thread(s), $RUNS runs, $WARMUP warm-up):"
    echo
    echo "| model | variant | tool | onnxq bench median ms | Python loop median ms | bench / Python |"
    echo "| --- | --- | --- | ---: | ---: | ---: |"
    for r in "${xcheck_rows[@]}"; do
        IFS='|' read -r label tool f med <<<"$r"
        log "$m: Python timing loop on $label $tool"
        if py=$("$PY" "$ROOT/tests/py/time_session.py" "$f" "$CORPUS/data/$m/calib.npz" "$THREADS" "$RUNS" "$WARMUP" 2>"$OUT/ts.txt" | tail -n 1 |
            "$PY" -c 'import json, sys; print(json.load(sys.stdin)["median_ms"])'); then
            ratio=$(awk -v a="$med" -v b="$py" 'BEGIN { printf "%.2f", a / b }')
            echo "| $m | $label | $tool | $(ms "$med") | $(ms "$py") | $ratio |"
        else
            echo "| $m | $label | $tool | $(ms "$med") | fails: $(tail -n 1 "$OUT/ts.txt" | cut -c1-100) | — |"
        fi
    done
fi
