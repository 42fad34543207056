#!/bin/sh
# unfreeze_test.sh GRAFT SOURCE_DIR: `graft train --unfreeze-every` end to
# end on the golden CNN: option errors, the groups (--verbose) and the
# trainable set of every epoch, losses, final weights, BatchNorm statistics
# and optimizer state against PyTorch (tests/data/golden/unfreeze, made by
# scripts/make-unfreeze-goldens.py), frozen parameters that do not move,
# optimizer state kept across a recompilation, resuming mid-schedule, and
# composition with --freeze and --head.
set -u
graft=$1 src=$2
cnn=$src/tests/data/golden/cnn gold=$src/tests/data/golden/unfreeze
mlp=$src/tests/data/golden/mlp
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0 passed=0

. "$src/tests/lib.sh"

# close GOT WANT TOL [each]: as many numbers, pairwise within TOL relative
# to the largest |WANT| (at least 1e-3), test_train.c's rule for weights;
# with "each", relative to each |WANT| (losses).
close() {
    [ "$(wc -l <"$1")" -eq "$(wc -l <"$2")" ] && [ -s "$2" ] || return 1
    paste "$1" "$2" | awk -v tol="$3" -v each="${4:-}" '
        { got[NR] = $1; want[NR] = $2; a = $2 < 0 ? -$2 : $2; if (a > s) s = a }
        END { if (s < 1e-3) s = 1e-3
              for (i = 1; i <= NR; i++) {
                  d = got[i] - want[i]; if (d < 0) d = -d
                  m = want[i] < 0 ? -want[i] : want[i]
                  if (d > tol * (each ? m : s)) { print "  " i ": " got[i] " vs " want[i]; bad = 1 } }
              exit bad }'
}

# same_data A B: the two .npy files hold the same values bit for bit.
same_data() {
    npy_f32 "$1" >"$tmp/a" && npy_f32 "$2" >"$tmp/b" && cmp -s "$tmp/a" "$tmp/b"
}

base="$graft train $cnn/model.onnx --data $cnn/x.npy --labels $cnn/y.npy --no-shuffle \
--init $cnn/init --threads 1"
sgd="--lr 0.05 --momentum 0.9 --weight-decay 1e-4"
adamw="--optimizer adamw --lr 1e-3 --weight-decay 0.01"
uf="--unfreeze-every 1 --unfreeze-groups 3"

# ------------------------------------------------------------ help, errors
expect 0 "--unfreeze-every E" "$graft" train --help
expect 0 "--unfreeze-order O" "$graft" train --help
expect 2 "need --unfreeze-every" $base --unfreeze-groups 3
expect 2 "need --unfreeze-every" $base --unfreeze-order bottom-up
expect 2 "--unfreeze-order: unknown value 'sideways'" $base $uf --unfreeze-order sideways
expect 2 "--unfreeze-every expects a positive integer" $base --unfreeze-every 0
expect 2 "--unfreeze-groups 6: the trainable parameters form only 5 layers" $base \
    --unfreeze-every 1 --unfreeze-groups 6 --epochs 1
mkdir "$tmp/empty"
expect 2 "--resume: cannot open '$tmp/empty/state.json'" $base $uf --resume "$tmp/empty"

# ------------------------------------------- groups and the trainable sets
# One epoch (kept as $tmp/ck1 for the checks further down).
expect 0 "unfreeze group 3 of 3 (from epoch 1): fc.weight fc.bias$" $base $sgd $uf \
    --epochs 1 --verbose --checkpoint "$tmp/ck1"
grep -q "^unfreeze group 1 of 3 (from epoch 3): conv1.weight bn1.weight bn1.bias \
res_conv1.weight res_bn1.weight res_bn1.bias$" "$tmp/out" &&
    grep -q "^unfreeze group 2 of 3 (from epoch 2): res_conv2.weight res_bn2.weight \
res_bn2.bias conv2.weight bn2.weight bn2.bias$" "$tmp/out"
check "--verbose lists the 3 groups: conv + BatchNorm layers, split 2, 2, 1" $?
# Default: one group per layer (5), bottom-up.
expect 0 "unfreeze group 5 of 5 (from epoch 5): fc.weight fc.bias$" $base $sgd \
    --unfreeze-every 1 --unfreeze-order bottom-up --epochs 1 --verbose

# ------------------------------------------------------ PyTorch goldens
# name OPTIONS...: 3 epochs of 20 batches; losses (1e-3 relative, the CNN's
# tolerance), then every final weight, BatchNorm statistic and optimizer
# state tensor (1e-3 of the tensor's scale).
golden() {
    name=$1
    shift
    rm -rf "$tmp/ck"
    expect 0 "trained 60 steps" $base $uf --epochs 3 --log "$tmp/$name.log" \
        --checkpoint "$tmp/ck" "$@"
    cp "$tmp/out" "$tmp/$name.out"
    log_losses "$tmp/$name.log" >"$tmp/got"
    npy_f32 "$gold/$name/losses.npy" >"$tmp/want"
    close "$tmp/got" "$tmp/want" 1e-3 each
    check "$name: 60 losses match PyTorch's (1e-3 relative)" $?
    bad=0 n=0
    for f in "$gold/$name"/final/*.npy "$gold/$name"/optimizer/*.npy; do
        b=$(basename "$f")
        n=$((n + 1))
        npy_f32 "$f" >"$tmp/want"
        if ! npy_f32 "$tmp/ck/$b" >"$tmp/got" 2>/dev/null || ! close "$tmp/got" "$tmp/want" 1e-3
        then
            echo "  $name: $b differs from PyTorch's"
            bad=1
        fi
    done
    [ "$n" -gt 30 ]
    check "$name: $n final tensors and optimizer states match PyTorch's" $((bad + $?))
}
golden sgd_top_down $sgd
golden adamw_top_down $adamw
golden adamw_bottom_up $adamw --unfreeze-order bottom-up

grep -q "^unfreeze: epoch 1: training groups 3-3 of 3 (2 parameters)$" "$tmp/sgd_top_down.out" &&
    grep -q "^unfreeze: epoch 2: training groups 2-3 of 3 (8 parameters)$" \
        "$tmp/sgd_top_down.out" &&
    grep -q "^unfreeze: epoch 3: training groups 1-3 of 3 (14 parameters)$" \
        "$tmp/sgd_top_down.out"
check "top-down: the trainable set of every epoch is reported" $?
grep -q "^unfreeze: epoch 1: training groups 1-1 of 3 (6 parameters)$" \
        "$tmp/adamw_bottom_up.out" &&
    grep -q "^unfreeze: epoch 2: training groups 1-2 of 3 (12 parameters)$" \
        "$tmp/adamw_bottom_up.out"
check "bottom-up: the trainable set of every epoch is reported" $?

# ---------------------------------------- frozen parameters do not move
# The checkpoint after epoch 1 holds epoch 2's step: group 2 unfrozen at its
# initial values, group 1 still constant (not in the checkpoint).
same_data "$tmp/ck1/res_conv2.weight.npy" "$cnn/init/res_conv2.weight.npy" &&
    same_data "$tmp/ck1/bn2.running_mean.npy" "$cnn/init/bn2.running_mean.npy" &&
    test ! -e "$tmp/ck1/conv1.weight.npy" && test -e "$tmp/ck1/fc.weight.momentum.npy" &&
    test -e "$tmp/ck1/conv2.weight.momentum.npy"
check "after epoch 1: group 2 at its initial values (BN statistics too), group 1 frozen" $?
$base $sgd $uf --epochs 2 --checkpoint "$tmp/ck2" >/dev/null 2>&1
same_data "$tmp/ck2/conv1.weight.npy" "$cnn/init/conv1.weight.npy" &&
    same_data "$tmp/ck2/bn1.running_var.npy" "$cnn/init/bn1.running_var.npy" &&
    ! same_data "$tmp/ck2/conv2.weight.npy" "$cnn/init/conv2.weight.npy"
check "after epoch 2: group 1 untouched, group 2 trained" $?
zero=1
npy_f32 "$tmp/ck1/conv2.weight.momentum.npy" | awk '$1 != 0 { exit 1 }' && zero=0
check "a newly unfrozen parameter starts with zero momentum" $zero

# ---------------------------- optimizer state kept across the recompile
# Epoch 1 trains fc alone: its weights and momentum equal those of a run
# that trains only fc (--train-only), bit for bit, across the recompile.
$base $sgd --train-only 'fc.*' --epochs 1 --checkpoint "$tmp/only" >/dev/null 2>&1
same_data "$tmp/ck1/fc.weight.momentum.npy" "$tmp/only/fc.weight.momentum.npy" &&
    same_data "$tmp/ck1/fc.weight.npy" "$tmp/only/fc.weight.npy" &&
    same_data "$tmp/ck1/fc.bias.momentum.npy" "$tmp/only/fc.bias.momentum.npy"
check "fc's weights and momentum carried over the recompile unchanged" $?

# ------------------------------------------------- resume mid-schedule
# Uninterrupted 3 epochs (shuffled) against 30 steps (mid-epoch 2) + resume,
# and 1 epoch + resume: the same 60 losses bit for bit.
run="$base $adamw $uf --seed 5"
$run --epochs 3 --log "$tmp/full.log" -o "$tmp/full.onnx" >/dev/null 2>&1
$run --epochs 3 --steps 30 --log "$tmp/a.log" --checkpoint "$tmp/cka" >/dev/null 2>&1
expect 0 "unfreeze: epoch 2: training groups 2-3" $run --epochs 3 --log "$tmp/b.log" \
    --resume "$tmp/cka" -o "$tmp/resumed.onnx"
log_losses "$tmp/full.log" >"$tmp/want"
log_losses "$tmp/a.log" "$tmp/b.log" >"$tmp/got"
cmp -s "$tmp/got" "$tmp/want" && [ "$(wc -l <"$tmp/got")" -eq 60 ]
check "resumed mid-epoch 2: the losses equal the uninterrupted run's" $?
cmp -s "$tmp/full.onnx" "$tmp/resumed.onnx"
check "resumed mid-epoch 2: the same exported model" $?
$run --epochs 1 --log "$tmp/c.log" --checkpoint "$tmp/ckc" >/dev/null 2>&1
$run --epochs 3 --log "$tmp/d.log" --resume "$tmp/ckc" >/dev/null 2>&1
log_losses "$tmp/c.log" "$tmp/d.log" >"$tmp/got"
cmp -s "$tmp/got" "$tmp/want"
check "resumed at the epoch-2 boundary: the losses equal the uninterrupted run's" $?

# ----------------------------------------------------------- composition
# --freeze: conv1 and bn1 are in no group and never train.
expect 0 "unfreeze group 1 of 2 (from epoch 2): res_conv1.weight res_bn1.weight" \
    $base $sgd --unfreeze-every 1 --unfreeze-groups 2 --freeze 'conv1.*' --freeze 'bn1.*' \
    --epochs 2 --verbose --checkpoint "$tmp/ckf"
test ! -e "$tmp/ckf/conv1.weight.npy" && test -e "$tmp/ckf/res_conv1.weight.npy"
check "--freeze: frozen parameters stay out of every group" $?
# --head: the new head is the last group of its own; with validation.
expect 0 "unfreeze group 2 of 2 (from epoch 1): fc3.weight fc3.bias$" "$graft" train \
    "$mlp/model.onnx" --data "$mlp/x.npy" --labels "$mlp/y.npy" --head 7 \
    --unfreeze-every 1 --unfreeze-groups 2 --verbose --epochs 2 --val-split 0.2
grep -q "unfreeze group 1 of 2 (from epoch 2): fc1.weight fc1.bias fc2.weight fc2.bias$" \
    "$tmp/out" && grep -q "epoch 2: loss .*val_acc" "$tmp/out"
check "--head: the body is the other group; validation runs every epoch" $?

# The learning-rate schedule runs over the whole run, across recompiles.
mrun="$graft train $mlp/model.onnx --data $mlp/x.npy --labels $mlp/y.npy --epochs 3 \
--schedule cosine --warmup 5 --optimizer adam --threads 1"
$mrun --log "$tmp/lr_all.log" >/dev/null 2>&1
$mrun --unfreeze-every 1 --log "$tmp/lr_uf.log" >/dev/null 2>&1
grep '"step"' "$tmp/lr_all.log" | sed 's/.*"lr"://' >"$tmp/want"
grep '"step"' "$tmp/lr_uf.log" | sed 's/.*"lr"://' >"$tmp/got"
cmp -s "$tmp/got" "$tmp/want" && [ "$(wc -l <"$tmp/got")" -eq 60 ]
check "cosine schedule with warm-up: the same 60 learning rates as without unfreezing" $?

echo "unfreeze_test: $passed passed, $failures failed"
[ "$failures" -eq 0 ]
