#!/bin/sh
# bench/train.sh [--quick] [--repeat R]: graft's training step next to
# PyTorch 1.13's, in the same run, on the four golden models
# (scripts/make-goldens.py) at batch 32: full and frozen (only the head
# trains), SGD and AdamW, 1 and 2 threads. Per case, interleaved: PyTorch
# (bench/torch_train.py --case) then graft (bench/train_bench.c), each a
# fresh process, median step time after a warm-up and the process's peak
# RSS. With --repeat R every pair runs R times and the lowest median of
# each side is kept (the machine may be shared).
# Exports the models once with `bench/torch_train.py --export`; writes
# bench/results-train-<date>.md and prints it. --quick: 10 steps after 3.
# Needs python3-torch, python3-onnx, libopenblas0-openmp and graft's build
# dependencies. BUILD (default build-bench/train) is the build directory.
set -eu
cd "$(dirname "$0")/.."
steps=50 warmup=10 repeat=1
while [ $# -gt 0 ]; do
    case $1 in
    --quick) steps=10 warmup=3 ;;
    --repeat) repeat=$2; shift ;;
    *) echo "usage: sh bench/train.sh [--quick] [--repeat R]" >&2; exit 2 ;;
    esac
    shift
done
build=${BUILD:-build-bench/train}
models=${MODELS:-mlp cnn mobilenet transformer}
out=${OUT:-bench/results-train-$(date +%Y-%m-%d).md}
openblas=/usr/lib/x86_64-linux-gnu/openblas-openmp
py=/usr/bin/python3

cmake -S bench -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target train_bench >/dev/null
bench=$build/train_bench
onnx=$build/models
for m in $models; do
    [ -f "$onnx/$m.onnx" ] && [ "$onnx/$m.onnx" -nt scripts/make-goldens.py ] && continue
    LD_LIBRARY_PATH=$openblas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
        $py bench/torch_train.py --models "$(echo $models | tr ' ' ,)" --export "$onnx" \
        --export-only 2>/dev/null
    break
done

raw=$build/train-raw.jsonl
: >"$raw"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for m in $models; do
    head=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["head"])' \
        "tests/data/golden/$m/model.json")
    for mode in full frozen; do
        for opt in sgd adamw; do
            for t in 1 2; do
                r=0
                while [ $r -lt "$repeat" ]; do
                    p=$(OMP_NUM_THREADS=$t LD_LIBRARY_PATH=$openblas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
                        $py bench/torch_train.py --steps $steps --warmup $warmup \
                        --case "$m" $mode $opt $t 32 2>/dev/null | tail -1) || p=""
                    g=$(OMP_NUM_THREADS=$t $bench "$onnx/$m.onnx" --name "$m" --mode $mode \
                        --head "$head" --optimizer $opt --threads $t --steps $steps \
                        --warmup $warmup 2>"$build/train-err.txt") || g=""
                    [ -n "$g" ] || g="{\"error\": $($py -c 'import json,sys; print(json.dumps(sys.stdin.read().strip()))' <"$build/train-err.txt")}"
                    echo "{\"case\": \"$m $mode $opt $t\", \"torch\": ${p:-null}, \"graft\": $g}" >>"$raw"
                    echo "$m $mode $opt $t: done" >&2
                    r=$((r + 1))
                done
            done
        done
    done
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

{
echo "# graft training-step benchmark, $(date +%Y-%m-%d)"
echo
echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; $(uname -sr)."
echo "Load average (1, 5, 15 min) before: $load0; after: $load1."
echo "Batch 32; median of $steps steps after $warmup warm-up steps; best of $repeat run(s) per side."
echo "PyTorch $($py -c 'import torch; print(torch.__version__)' 2>/dev/null) with OpenBLAS (openmp);"
echo "graft $(git rev-parse --short HEAD)."
echo
$py - "$raw" <<'EOF'
import json, math, sys
cases = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    c = cases.setdefault(r['case'], {'torch': None, 'graft': None, 'error': None})
    for side in ('torch', 'graft'):
        v = r[side]
        if v is None or 'error' in v:
            if v is not None: c['error'] = v['error']
            continue
        if c[side] is None or v['step_ms'] < c[side]['step_ms']:
            c[side] = dict(v, peak_rss_kb=max(v['peak_rss_kb'],
                                              (c[side] or {}).get('peak_rss_kb', 0)))
print('| case | PyTorch ms | graft ms | graft / PyTorch | PyTorch RSS MB | graft RSS MB | graft compile s |')
print('|---|---|---|---|---|---|---|')
ratios, worse, rss_worse, errors = {}, [], [], []
for name, c in cases.items():
    t, g = c['torch'], c['graft']
    ts = '%.3f' % t['step_ms'] if t else 'failed'
    gs = '%.3f' % g['step_ms'] if g else 'failed'
    ratio = ''
    if t and g:
        q = g['step_ms'] / t['step_ms']
        ratios.setdefault(name.split()[-1], []).append(q)
        ratio = '%.2f' % q
        if q > 1: worse.append(name)
        if g['peak_rss_kb'] > t['peak_rss_kb']: rss_worse.append(name)
    if c['error']: errors.append((name, c['error']))
    print('| %s | %s | %s | %s | %s | %s | %s |' % (
        name, ts, gs, ratio, '%.0f' % (t['peak_rss_kb'] / 1024) if t else '',
        '%.0f' % (g['peak_rss_kb'] / 1024) if g else '',
        '%.1f' % (g['compile_ms'] / 1e3) if g else ''))
print()
for th in sorted(ratios):
    q = ratios[th]
    gm = math.exp(sum(map(math.log, q)) / len(q))
    print('Geometric mean of graft / PyTorch, %s thread%s: %.2f (%d cases).' % (
        th, '' if th == '1' else 's', gm, len(q)))
print()
print('Cases where graft is slower than PyTorch: %s.' % (', '.join(worse) or 'none'))
print('Cases where graft\'s peak RSS is higher: %s.' % (', '.join(rss_worse) or 'none'))
for name, e in errors:
    print('\nError, %s: `%s`' % (name, e))
EOF
} | tee "$out"
