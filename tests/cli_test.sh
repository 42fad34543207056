#!/bin/sh
# cli_test.sh GRAFT EXAMPLE_MODEL LIGHT_DIR TEST_MODELS: the graft command
# end to end: help texts, inspect on the example and the light models, and
# the error messages and exit statuses of bad input.
set -u
graft=$1 example=$2 light=$3 models=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0 passed=0

# expect STATUS PATTERN CMD...: runs CMD, checks exit status and that
# stdout+stderr match the grep pattern.
expect() {
    want=$1 pattern=$2
    shift 2
    "$@" >"$tmp/out" 2>&1
    got=$?
    if [ "$got" -ne "$want" ] || ! grep -q -e "$pattern" "$tmp/out"; then
        echo "FAIL: $* (exit $got, expected $want; pattern '$pattern')"
        sed 's/^/    /' "$tmp/out" | head -20
        failures=$((failures + 1))
    else
        passed=$((passed + 1))
    fi
}

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

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
