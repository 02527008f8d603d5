# Shared by the bench scripts (sourced). timed CMD...: runs CMD under /usr/bin/time -v with its
# output in $OUT/cmd.txt and sets WALL (seconds), CPU (user + system seconds), RSS (peak resident
# MB) and RC (exit status). CPU is the steadier measure on a busy machine for single-threaded work.
timed() {
    /usr/bin/time -v -o "$OUT/time.txt" "$@" >"$OUT/cmd.txt" 2>&1
    RC=$?
    # "Elapsed (wall clock) time (h:mm:ss or m:ss): 1:02.34" -> seconds
    WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ {
        n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; printf "%.2f", s }' "$OUT/time.txt")
    CPU=$(awk -F': ' '/(User|System) time \(seconds\)/ { s += $2 } END { printf "%.2f", s }' "$OUT/time.txt")
    RSS=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$OUT/time.txt")
}

# score MODEL_NAME FILE: the corpus metric of FILE (../shared/corpus/eval/<model>.py, last line).
# ours_score MODEL_NAME FLAGS...: onnxq weight-only quantization of the corpus model, scored, or
# why it failed. Both need PY, CORPUS, ONNXQ and OUT.
score() { "$PY" "$CORPUS/eval/$1.py" "$2" 2>/dev/null | tail -n 1; }
ours_score() {  # MODEL_NAME FLAGS...
    local m=$1
    shift
    if "$ONNXQ" quantize "$CORPUS/models/$m/model.onnx" -o "$OUT/q.onnx" --mode weight-only "$@" >"$OUT/q.txt" 2>&1; then
        score "$m" "$OUT/q.onnx"
    else
        echo "fails: $(grep -m1 error "$OUT/q.txt")"
    fi
}

# use_ort_of_py: exports ORT_DYLIB_PATH (unless set) as the ONNX Runtime library of PY's onnxruntime
# package, found once rather than by every onnxq run.
use_ort_of_py() {
    if [[ -z ${ORT_DYLIB_PATH:-} ]]; then
        ORT_DYLIB_PATH=$("$PY" -c 'import importlib.util, glob, os
d = os.path.join(importlib.util.find_spec("onnxruntime").submodule_search_locations[0], "capi")
print(sorted(glob.glob(os.path.join(d, "libonnxruntime.so*")))[-1])' 2>/dev/null) || ORT_DYLIB_PATH=""
    fi
    export ORT_DYLIB_PATH
}

# measure_runs LABEL CMD...: runs CMD $RUNS times, each into an emptied $OUT/o, appending its output
# and timing to $LOG and a row `| LABEL | run | wall | CPU | RSS | exit |` to the caller's rows array.
measure_runs() {
    local label=$1 run
    shift
    for run in $(seq "$RUNS"); do
        rm -rf "$OUT/o" && mkdir -p "$OUT/o"
        timed "$@"
        { echo "## $label, run $run: $*"; cat "$OUT/cmd.txt" "$OUT/time.txt"; echo; } >>"$LOG"
        rows+=("| $label | $run | $WALL | $CPU | $RSS | $RC |")
        echo "$label, run $run: ${WALL} s wall, ${CPU} s CPU, ${RSS} MB, exit $RC" >&2
    done
}
