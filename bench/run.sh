#!/bin/sh
# bench/run.sh [--quick]: graft next to its references, in the same run.
#   - SGEMM GFLOP/s (256..2048, 1 and 2 threads): graft's JIT kernel vs
#     OpenBLAS sgemm (Debian libopenblas0-openmp), bench/gemm_bench.c;
#   - model latency (`graft run --bench`) vs ONNX Runtime 1.30 (npm
#     onnxruntime-node) on the example model and the light models, batch 1
#     and 32, 1 and 2 threads; ratios are graft / reference (lower is better
#     for latency, higher for GFLOP/s).
# Writes bench/results-<date>.md and prints it, with the geometric mean of
# graft / ORT per batch and thread count. Repetitions: 10 at batch 1, 3 at
# batch 32; --quick: 3 repetitions, batch 1 only. The light models fix
# their batch at 1: batch 32 runs a copy made by bench/batch_model.py
# (python3-onnx), the same model for graft and ONNX Runtime.
# GRAFT_BENCH_MODELS='light_res*' limits the models (a shell pattern on
# the model name). Needs the packages of scripts/install-deps.sh plus
# libopenblas0-openmp, libopenblas-openmp-dev and nodejs/npm.
set -eu
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1
reps1=$([ $quick = 1 ] && echo 3 || echo 10)
batches=$([ $quick = 1 ] && echo 1 || echo "1 32")
out=bench/results-$(date +%Y-%m-%d).md
shared=${GRAFT_SHARED:-../shared/onnx-tests}

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DGRAFT_TESTS=OFF >/dev/null
cmake --build build-bench -j"$(nproc)" >/dev/null
graft=./build-bench/tools/graft
[ -f models/ch_ppocr_mobile_v2.0_cls_infer.onnx ] || sh scripts/fetch-models.sh >/dev/null
if [ ! -d bench/node_modules/onnxruntime-node ]; then
    (cd bench && npm install --silent --ignore-scripts --no-save onnxruntime-node@1.30.0 >/dev/null)
fi
export ORT_NODE="$PWD/bench/node_modules/onnxruntime-node"

{
echo "# graft benchmarks, $(date +%Y-%m-%d)"
echo
echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; $(uname -sr)."
echo
if [ -f bench/gemm_bench.c ] && [ -f /usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0 ]; then
    gcc -O2 -std=gnu11 -I. bench/gemm_bench.c build-bench/codegen/libgraft_codegen.a \
        build-bench/runtime/libgraft_runtime.a build-bench/ir/libgraft_ir.a \
        -L/usr/lib/llvm-16/lib -lLLVM-16 \
        /usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0 -fopenmp -lm \
        -o build-bench/gemm_bench
    echo "## SGEMM (GFLOP/s; best of several runs, alternating; 1 thread: thread CPU time, 2: wall)"
    echo
    ./build-bench/gemm_bench
    echo
fi
echo "## Model latency (ms, median of $reps1 runs at batch 1, 3 at batch 32, after a warm-up)"
echo
echo "| model | batch | threads | graft | ONNX Runtime | graft / ORT |"
echo "|---|---|---|---|---|---|"
rows=build-bench/latency-rows.txt
: > "$rows"
for model in models/ch_ppocr_mobile_v2.0_cls_infer.onnx "$shared"/light/*.onnx; do
    [ -f "$model" ] || continue
    name=$(basename "$model" .onnx)
    case $name in ${GRAFT_BENCH_MODELS:-*}) ;; *) continue ;; esac
    for batch in $batches; do
        reps=$([ "$batch" = 1 ] && echo "$reps1" || echo 3)
        dir=build-bench/inputs/$name-$batch
        run_model=$model
        # The light models fix their batch at 1: a copy with batch N.
        if [ "$batch" != 1 ] && [ "$(dirname "$model")" = "$shared/light" ]; then
            run_model=build-bench/models/$name-b$batch.onnx
            mkdir -p build-bench/models
            [ -f "$run_model" ] || /usr/bin/python3 bench/batch_model.py "$model" "$batch" "$run_model"
        fi
        dims=""
        # The example model is fully convolutional: run it at its training size.
        case $name in ch_ppocr_mobile_v2.0_cls_infer) dims="--dims 3x48x192" ;; esac
        flags=$(node scripts/ort-run.js "$run_model" --make-inputs "$dir" --batch "$batch" $dims 2>/dev/null | head -1)
        for threads in 1 2; do
            g=$($graft run "$run_model" $flags --output-dir build-bench/out --threads "$threads" \
                --bench "$reps" 2>&1 | sed -n 's/.*median \([0-9.]*\) ms.*/\1/p')
            o=$(node scripts/ort-run.js "$run_model" $(echo "$flags" | sed 's/--input //g') \
                --threads "$threads" --bench "$reps" 2>/dev/null | sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p')
            ratio=$(awk -v a="${g:-0}" -v b="${o:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "n/a" }')
            echo "| $name | $batch | $threads | ${g:-error} | ${o:-error} | $ratio |"
            echo "$batch $threads $ratio" >> "$rows"
        done
    done
done
echo
echo "Geometric mean of graft / ORT (lower is better; target <= 1):"
echo
for batch in $batches; do
    for threads in 1 2; do
        awk -v b="$batch" -v t="$threads" '$1 == b && $2 == t && $3 != "n/a" { s += log($3); n++ }
            END { if (n) printf "- batch %s, %s thread(s): %.2f over %d models\n", b, t, exp(s / n), n }' "$rows"
    done
done
} | tee "$out"
