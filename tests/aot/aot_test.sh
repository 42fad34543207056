#!/bin/sh
# aot_test.sh GRAFT SOURCE_DIR TEST_MODELS CASE...: `graft compile` end to
# end. Help, errors and exit statuses; an object built for x86-64-v3 holds
# no AVX-512 code (and one built for x86-64-v4 does: the check can fail);
# nm shows only NAME_ symbols as global definitions. A CASE NAME:RUNNER:MODEL
# is tests/aot/aot_run.c linked with MODEL's object (compiled at build time
# with --cpu native): its outputs must equal `graft run`'s (the JIT's) byte
# for byte on the same input. A CASE train:TRAINER:OPTIONS is
# tests/aot/aot_train.c linked with the golden MLP compiled with --train
# OPTIONS: its 20 losses must equal those of `graft train` with the same
# options, bit for bit, and so must the trained weights it exports, its
# net_run afterwards and a run resumed from its checkpoint.
set -u
graft=$1 src=$2 models=$3
shift 3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0 passed=0

. "$src/tests/lib.sh"

# ---------------------------------------------------------------- help, errors
cnn=$src/tests/data/golden/cnn/model.onnx
mlp=$src/tests/data/golden/mlp/model.onnx
expect 0 "usage: graft compile" "$graft" compile --help
expect 0 "x86-64-v3" "$graft" compile --help
expect 0 "compile" "$graft" --help
expect 2 "graft: error: no model given" "$graft" compile -o "$tmp/x.o"
expect 2 "graft: error: no output given" "$graft" compile "$mlp"
expect 2 "graft: error: --cpu: unknown level 'pentium'" "$graft" compile "$mlp" -o "$tmp/x.o" \
    --cpu pentium
expect 2 "graft: error: unknown option '--bogus'" "$graft" compile "$mlp" --bogus -o "$tmp/x.o"
expect 2 "graft: error: --prefix: '9lives' is not a C identifier" \
    "$graft" compile "$mlp" -o "$tmp/x.o" --prefix 9lives
expect 1 "graft: error: .*'$tmp/missing/x.o'" "$graft" compile "$mlp" -o "$tmp/missing/x.o"
check "no object after a failed compile" "$(ls "$tmp/missing" 2>/dev/null | wc -l)"
expect 1 "graft: error: .*header.h" "$graft" compile "$mlp" -o "$tmp/x.o" \
    --header "$tmp/missing/header.h"
expect 1 "graft: error: .*unsupported op types: com.example.FancyOp" "$graft" compile "$models/cli_unknown_ops.onnx" \
    -o "$tmp/x.o"
expect 1 "graft: error: node 'pool' (MaxPool): MaxPool over 4 spatial dims is not compiled" \
    "$graft" compile "$models/codegen_unsupported.onnx" -o "$tmp/x.o"
expect 1 "graft: error: .*no-such.onnx" "$graft" compile "$tmp/no-such.onnx" -o "$tmp/x.o"
check "no temporary files left" "$(ls "$tmp" | grep -c tmp)"

# ------------------------------------------------------------- nm and objdump
# EVEX-only: zmm and mask registers, and instructions AVX2 does not have.
evex='%zmm|%k[0-7]|[[:space:]](vpternlog|vperm[it]2|vpcompress|vcompressp|vexpandp|vpexpand|vrndscale|vscalef|vgetexp|vgetmant|vfixupimm|vrange|vrcp14|vrsqrt14|vpmov[us]?[qdw][bwd][[:space:]]|vpro[lr]|vpsraq|vpabsq|vpm(ax|in)[su]q|vpmullq|vcvt[a-z0-9]*2u|vcvtu|vpconflict|vplzcnt|vdbpsadbw|vpbroadcastm|k(mov|and|or|xor|not|shift|add|test|unpck)[bwdq])'
tuned=
for case in "$@"; do [ "${case%%:*}" = cnn ] && tuned=${case##*:}; done
for model in "$mlp" $tuned; do
    base=$(basename "$model" .onnx)
    expect 0 "" "$graft" compile "$model" -o "$tmp/$base.v3.o" --prefix m3 \
        --header "$tmp/m3.h"
    # The header is clean C11 and C++ (-Wpedantic -Werror).
    printf '#include "m3.h"\nint main(void) { return m3_N_INPUTS - 1; }\n' >"$tmp/use.c"
    cc -std=c11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only -I"$tmp" "$tmp/use.c"
    check "$base: the header compiles as pedantic C11" $?
    if command -v c++ >/dev/null; then
        c++ -x c++ -Wall -Wextra -pedantic -Werror -fsyntax-only -I"$tmp" "$tmp/use.c"
        check "$base: the header compiles as C++" $?
    fi
    objdump -d --no-show-raw-insn "$tmp/$base.v3.o" >"$tmp/$base.v3.s"
    check "$base x86-64-v3: disassembles" $?
    if grep -E -q -e "$evex" "$tmp/$base.v3.s"; then
        echo "  $(grep -E -e "$evex" "$tmp/$base.v3.s" | head -3)"
        check "$base x86-64-v3: no AVX-512 instruction" 1
    else
        check "$base x86-64-v3: no AVX-512 instruction" 0
    fi
    expect 0 "" "$graft" compile "$model" -o "$tmp/$base.v4.o" --prefix m4 --cpu x86-64-v4
    objdump -d --no-show-raw-insn "$tmp/$base.v4.o" | grep -q '%zmm'
    check "$base x86-64-v4: uses zmm registers" $?
    # Only m3_ symbols are global definitions; undefined ones are the
    # runtime's (gr_aot_*) and the C library's.
    nm -g --defined-only "$tmp/$base.v3.o" | awk '{print $3}' >"$tmp/defined"
    check "$base: m3_run m3_last_error m3_set_threads defined" \
        "$(printf 'm3_last_error\nm3_run\nm3_set_threads\n' | cmp -s - "$tmp/defined"; echo $?)"
    nm -u "$tmp/$base.v3.o" | awk '{print $2}' | grep -v '^gr_aot_' >"$tmp/undefined"
    check "$base: undefined symbols are the runtime's and libc's/libm's" \
        "$(grep -v -c -e '^mem[a-z]*$' -e '^[a-z0-9]*f$' -e '^exp$' -e '^log$' "$tmp/undefined")"
    file "$tmp/$base.v3.o" | grep -q "ELF 64-bit LSB relocatable"
    check "$base: a relocatable ELF object" $?
done

# --------------------------------------------------------------- AOT vs JIT
for case in "$@"; do
    name=${case%%:*} rest=${case#*:}
    [ "$name" != train ] || continue
    runner=${rest%%:*} model=${rest#*:}
    dir=$tmp/$name
    mkdir -p "$dir/out"
    expect 0 "" "$runner" "$dir"
    input=$(ls "$dir"/*.npy | head -1)
    iname=$(basename "$input" .npy)
    expect 0 "" "$graft" run "$model" --input "$iname=$input" --output-dir "$dir/jit"
    n=0
    for out in "$dir"/out/*.npy; do
        cmp -s "$out" "$dir/jit/$(basename "$out")"
        check "$name: AOT output $(basename "$out") equals the JIT's bit for bit" $?
        n=$((n + 1))
    done
    check "$name: has outputs" "$([ "$n" -gt 0 ]; echo $?)"
done

# ----------------------------------------------------------------- training
golden=$src/tests/data/golden/mlp

# train_case TRAINER OPTIONS: see the top.
train_case() {
    trainer=$1 options=$2
    dir=$tmp/train$((passed + failures))
    mkdir -p "$dir/export"
    "$trainer" "$golden" "$dir" 0.05 >"$dir/aot.txt" 2>"$dir/aot.err"
    check "$options: aot_train runs ($(head -c 300 "$dir/aot.err"))" $?
    grep -v again "$dir/aot.txt" >"$dir/aot_losses"
    grep again "$dir/aot.txt" | awk '{print $2}' >"$dir/again"
    # shellcheck disable=SC2086
    expect 0 "trained 20 steps" "$graft" train "$golden/model.onnx" --data "$golden/x.npy" \
        --labels "$golden/y.npy" --no-shuffle --steps 20 --lr 0.05 $options \
        --log "$dir/jit.log" --checkpoint "$dir/jit_ckpt" -o "$dir/tuned.onnx"
    grep '"step"' "$dir/jit.log" | sed 's/.*"loss":\([^,}]*\).*/\1/' >"$dir/jit_losses"
    check "$options: 20 losses" "$([ "$(wc -l <"$dir/jit_losses")" -eq 20 ]; echo $?)"
    cmp -s "$dir/aot_losses" "$dir/jit_losses"
    same=$?
    check "$options: AOT and JIT losses over 20 steps are identical" $same
    [ "$same" -eq 0 ] || paste "$dir/aot_losses" "$dir/jit_losses" | head -5
    tail -10 "$dir/aot_losses" | cmp -s - "$dir/again"
    check "$options: net_load + 10 steps repeat steps 10..19 exactly" $?
    for f in "$dir"/export/*.npy; do
        cmp -s "$f" "$dir/jit_ckpt/$(basename "$f")"
        check "$options: exported $(basename "$f") equals graft train's" $?
    done
    check "$options: exported 6 tensors" "$([ "$(ls "$dir/export" | wc -l)" -eq 6 ]; echo $?)"
    [ -f "$dir/ckpt/state.json" ] && grep -q '"step":10' "$dir/ckpt/state.json"
    check "$options: net_save wrote a checkpoint with state.json at step 10" $?
    ls "$dir/ckpt" | grep -q -E '\.(momentum|m|v|grad_sum)\.npy$'
    check "$options: the checkpoint holds the optimizer state" $?
    # net_run computes with the trained weights: as the JIT runs graft
    # train's export.
    expect 0 "" "$graft" run "$dir/tuned.onnx" --input "x=$dir/x0.npy" \
        --output-dir "$dir/jit_run"
    cmp -s "$dir/run.npy" "$dir/jit_run/logits.npy"
    check "$options: net_run after training equals graft run of graft train's export" $?
    # The export is a directory graft train --init accepts.
    expect 0 "trained 1 steps" "$graft" train "$golden/model.onnx" --data "$golden/x.npy" \
        --labels "$golden/y.npy" --no-shuffle --steps 1 --lr 0 --init "$dir/export"
}

for case in "$@"; do
    [ "${case%%:*}" = train ] || continue
    rest=${case#*:}
    train_case "${rest%%:*}" "${rest#*:}"
done
expect 0 "" "$graft" compile "$golden/model.onnx" --train --optimizer adam -o "$tmp/t.o" \
    --prefix t
nm -g --defined-only "$tmp/t.o" | awk '{print $3}' >"$tmp/defined"
printf 't_export_weights\nt_last_error\nt_load\nt_run\nt_save\nt_set_threads\nt_train_step\n' |
    cmp -s - "$tmp/defined"
check "--train: only the seven t_ entry points are global definitions" $?
expect 2 "graft: error: pass 'train': no parameter is left to train" \
    "$graft" compile "$golden/model.onnx" --train --freeze '*' -o "$tmp/x.o"
expect 2 "graft: error: --optimizer: unknown value 'sgdd'" \
    "$graft" compile "$golden/model.onnx" --train --optimizer sgdd -o "$tmp/x.o"

echo "aot_test: $passed passed, $failures failed"
[ "$failures" -eq 0 ]
