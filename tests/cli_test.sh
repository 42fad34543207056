#!/bin/sh
# cli_test.sh GRAFT EXAMPLE_MODEL LIGHT_DIR TEST_MODELS: the graft command
# end to end: help texts, inspect on the example and the light models, and
# the error messages and exit statuses of bad input.
set -u
graft=$1 example=$2 light=$3 models=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0 passed=0

. "$(dirname "$0")/lib.sh"

expect 0 "usage: graft COMMAND" "$graft" --help
expect 2 "usage: graft COMMAND" "$graft"
expect 2 "unknown command 'frobnicate'" "$graft" frobnicate
expect 0 "usage: graft inspect" "$graft" inspect --help
expect 2 "no model given" "$graft" inspect
expect 2 "unknown option '--frob'" "$graft" inspect --frob x.onnx
expect 2 "batch expects a positive integer" "$graft" inspect x.onnx --batch 0
expect 2 "shape expects NAME=DIMS" "$graft" inspect x.onnx --shape 1x3
expect 1 "$tmp/missing.onnx" "$graft" inspect "$tmp/missing.onnx"
: >"$tmp/empty.onnx"
expect 1 "empty" "$graft" inspect "$tmp/empty.onnx"
head -c 4096 /dev/urandom >"$tmp/random.onnx"
expect 1 "random.onnx" "$graft" inspect "$tmp/random.onnx"
head -c 1000 "$example" >"$tmp/truncated.onnx"
expect 1 "truncated.onnx" "$graft" inspect "$tmp/truncated.onnx"

# The example model: every op supported, shapes known at batch 1.
expect 0 "unsupported ops: none" "$graft" inspect "$example" --batch 1
expect 0 "softmax_0.tmp_0: f32\[1,2\]" "$graft" inspect "$example" --batch 1
expect 0 "x: f32\[4,3,48,192\]" "$graft" inspect "$example" --shape x=4x3x48x192
expect 0 '"unsupported":\[\]}' "$graft" inspect "$example" --json
expect 2 "no input 'y'" "$graft" inspect "$example" --shape y=1x3x32x32

# Every light model: imported, all ops supported.
for m in "$light"/*.onnx; do
    [ -f "$m" ] || continue
    expect 0 "unsupported ops: none" "$graft" inspect "$m"
done

# A model with ops graft does not know: reported together, still exit 0.
if [ -f "$models/cli_unknown_ops.onnx" ]; then
    expect 0 "FancyOp" "$graft" inspect "$models/cli_unknown_ops.onnx"
    expect 0 "OtherOp" "$graft" inspect "$models/cli_unknown_ops.onnx"
fi

# graft run: command line and input checks (before compiling) on the example.
# npy FILE DESCR SHAPE BYTES: a .npy file of zeros with a 128-byte header.
npy() {
    { printf '\223NUMPY\001\000\166\000'
      printf "%-117s\n" "{'descr': '$2', 'fortran_order': False, 'shape': $3, }"
      head -c "$4" /dev/zero; } >"$1"
}
npy "$tmp/f64.npy" '<f8' '(1, 3, 48, 192)' 221184
npy "$tmp/rank3.npy" '<f4' '(3, 48, 192)' 110592
npy "$tmp/short.npy" '<f4' '(1, 3, 48, 192)' 1000
npy "$tmp/x.npy" '<f4' '(2, 3, 48, 192)' 221184
expect 0 "usage: graft run" "$graft" run --help
expect 2 "no model given" "$graft" run
expect 2 "unknown option '--frob'" "$graft" run x.onnx --frob
expect 2 "threads expects a positive integer" "$graft" run x.onnx --threads 0
expect 2 "bench expects a positive integer" "$graft" run x.onnx --bench x
expect 2 "no pass 'frob'" "$graft" run x.onnx --dump-after frob
expect 1 "$tmp/missing.onnx" "$graft" run "$tmp/missing.onnx"
expect 2 "missing input 'x'" "$graft" run "$example"
expect 2 "has no input 'y' (inputs: 'x')" "$graft" run "$example" --input "y=$tmp/x.npy"
expect 2 "input 'x' is given twice" "$graft" run "$example" --input "$tmp/x.npy" --input "x=$tmp/x.npy"
expect 1 "cannot open '$tmp/nope.npy'" "$graft" run "$example" --input "x=$tmp/nope.npy"
expect 1 "random.onnx" "$graft" run "$example" --input "$tmp/random.onnx"
expect 1 "file '$tmp/f64.npy' holds f64\[1,3,48,192\]" "$graft" run "$example" --input "$tmp/f64.npy"
expect 1 "file '$tmp/rank3.npy' holds f32\[3,48,192\]" "$graft" run "$example" --input "$tmp/rank3.npy"
expect 1 "short.npy' is truncated" "$graft" run "$example" --input "$tmp/short.npy"
expect 2 "its file '$tmp/x.npy' holds f32\[2,3,48,192\]" "$graft" run "$example" --input "$tmp/x.npy" --shape x=1x3x48x192
expect 1 "'/etc/passwd' is not a directory" "$graft" run "$example" --input "$tmp/x.npy" --output-dir /etc/passwd

# graft run end to end on ONNX node tests the code generator handles.
node=$light/../node
if [ -d "$node/test_identity" ] && [ -d "$node/test_reshape_reordered_all_dims" ]; then
    id=$node/test_identity
    expect 0 "y: f32\[1,1,2,2\] -> $tmp/o1/a/y.npy" "$graft" run "$id/model.onnx" \
        --input "$id/test_data_set_0/input_0.pb" --output-dir "$tmp/o1/a"
    expect 0 "y: f32\[1,1,2,2\]" "$graft" run "$id/model.onnx" --input "x=$tmp/o1/a/y.npy" \
        --output-dir "$tmp/o2" --threads 3
    cmp -s "$tmp/o1/a/y.npy" "$tmp/o2/y.npy" || { echo "FAIL: npy round trip through run"; failures=$((failures + 1)); }
    expect 0 "bench: 3 runs on 2 threads, median .* ms, min .* ms" "$graft" run "$id/model.onnx" \
        --input "$tmp/o1/a/y.npy" --output-dir "$tmp/o3" --bench 3 --threads 2
    expect 0 "graft: codegen: 1 kernels" "$graft" run "$id/model.onnx" --input "$tmp/o1/a/y.npy" \
        --output-dir "$tmp/o3" --verbose
    expect 0 "# after pass 'dce'" "$graft" run "$id/model.onnx" --input "$tmp/o1/a/y.npy" \
        --output-dir "$tmp/o3" --dump-after dce
    rs=$node/test_reshape_reordered_all_dims
    expect 0 "reshaped: f32\[4,2,3\]" "$graft" run "$rs/model.onnx" --output-dir "$tmp/o4" \
        --input "$rs/test_data_set_0/input_0.pb" --input "$rs/test_data_set_0/input_1.pb"
    expect 2 "say which input it feeds" "$graft" run "$rs/model.onnx" --input "$tmp/o1/a/y.npy"
fi
# Same bits on 1 and 3 threads; bool outputs keep their dtype.
if [ -d "$node/test_add" ] && [ -d "$node/test_equal" ]; then
    for th in 1 3; do
        expect 0 "sum: f32\[3,4,5\]" "$graft" run "$node/test_add/model.onnx" --threads $th \
            --input "$node/test_add/test_data_set_0/input_0.pb" \
            --input "$node/test_add/test_data_set_0/input_1.pb" --output-dir "$tmp/add$th"
    done
    cmp -s "$tmp/add1/sum.npy" "$tmp/add3/sum.npy" ||
        { echo "FAIL: Add differs between 1 and 3 threads"; failures=$((failures + 1)); }
    expect 0 "z: bool\[3,4,5\]" "$graft" run "$node/test_equal/model.onnx" --output-dir "$tmp/eq" \
        --input "$node/test_equal/test_data_set_0/input_0.pb" \
        --input "$node/test_equal/test_data_set_0/input_1.pb"
fi

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
