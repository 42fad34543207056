#!/bin/sh
# train_test.sh GRAFT SOURCE_DIR: `graft train` and `graft eval` end to end:
# help texts, errors and exit statuses, the golden MLP's 20 SGD and AdamW
# losses against PyTorch's (1e-4 relative), --checkpoint/--resume giving the
# same losses bit for bit, export and eval of the exported model; LoRA
# (--lora, --merge/--no-merge, --save-adapters, run --adapter).
set -u
graft=$1 src=$2
mlp=$src/tests/data/golden/mlp
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0 passed=0

. "$src/tests/lib.sh"

# same_losses A B TOL: A and B hold as many numbers, pairwise within TOL
# relative.
same_losses() {
    [ "$(wc -l <"$1")" -eq "$(wc -l <"$2")" ] || return 1
    paste "$1" "$2" | awk -v tol="$3" '
        { d = $1 - $2; if (d < 0) d = -d; m = $2 < 0 ? -$2 : $2;
          if (d > tol * m) { print "  step " NR ": " $1 " vs " $2; bad = 1 } }
        END { exit bad }'
}

# ---------------------------------------------------------------- help, errors
expect 0 "usage: graft train" "$graft" train --help
expect 0 "--optimizer NAME" "$graft" train --help
expect 0 "--checkpoint DIR" "$graft" train --help
expect 0 "usage: graft eval" "$graft" eval --help
expect 0 "--verbose" "$graft" eval --help
expect 0 "train " "$graft" --help
expect 2 "no model given" "$graft" train
expect 2 "no training data given" "$graft" train "$mlp/model.onnx"
expect 2 "unknown option '--frob'" "$graft" train "$mlp/model.onnx" --frob
expect 2 "--optimizer: unknown value 'rmsprop'" "$graft" train "$mlp/model.onnx" \
    --data "$mlp/x.npy" --optimizer rmsprop
expect 2 "--loss: unknown value 'hinge'" "$graft" train "$mlp/model.onnx" \
    --data "$mlp/x.npy" --loss hinge
expect 2 "--schedule: expected" "$graft" train "$mlp/model.onnx" --data "$mlp/x.npy" \
    --schedule step:0:1
expect 2 "--lr expects a number" "$graft" train "$mlp/model.onnx" --data "$mlp/x.npy" --lr -1
expect 2 "--epochs expects a positive integer" "$graft" train "$mlp/model.onnx" \
    --data "$mlp/x.npy" --epochs 0
expect 2 "--resume $tmp/none: no such checkpoint" "$graft" train "$mlp/model.onnx" \
    --data "$mlp/x.npy" --resume "$tmp/none"
expect 2 "--val-split must be below 1" "$graft" train "$mlp/model.onnx" \
    --data "$mlp/x.npy" --val-split 1
expect 1 "$tmp/missing.npy" "$graft" train "$mlp/model.onnx" --data "$tmp/missing.npy"
expect 2 "no model given" "$graft" eval
expect 2 "no data given" "$graft" eval "$mlp/model.onnx"
expect 2 "has no labels" "$graft" eval "$mlp/model.onnx" --data "$mlp/x.npy"

# Labels out of range for the model's 5 classes.
i=0
while [ $i -lt 319 ]; do echo 1; i=$((i + 1)); done >"$tmp/bad.csv"
echo 9 >>"$tmp/bad.csv"
expect 2 "label 9 of sample 319 is out of range" "$graft" train "$mlp/model.onnx" \
    --data "$mlp/x.npy" --labels "$tmp/bad.csv" --steps 1
expect 2 "label 9 of sample 319 is out of range" "$graft" eval "$mlp/model.onnx" \
    --data "$mlp/x.npy" --labels "$tmp/bad.csv"
expect 2 "fixed batch of 16" "$graft" train "$mlp/model.onnx" --data "$mlp/x.npy" \
    --labels "$mlp/y.npy" --batch 8
mkdir "$tmp/badinit"
cp "$mlp/init/fc1.bias.npy" "$tmp/badinit/fc9.bias.npy"
expect 2 "no parameter 'fc9.bias'" "$graft" train "$mlp/model.onnx" --data "$mlp/x.npy" \
    --labels "$mlp/y.npy" --init "$tmp/badinit"
rm "$tmp/badinit/fc9.bias.npy"
cp "$mlp/init/fc1.bias.npy" "$tmp/badinit/fc2.weight.npy"
expect 2 "expected f32\[32,32\]" "$graft" train "$mlp/model.onnx" --data "$mlp/x.npy" \
    --labels "$mlp/y.npy" --init "$tmp/badinit"

# A diverging run stops with a clear error and status 1, keeping no bad checkpoint.
expect 1 "the loss is infinite at step" "$graft" train "$mlp/model.onnx" --data "$mlp/x.npy" \
    --labels "$mlp/y.npy" --steps 10 --lr 1e38 --momentum 0.9 --checkpoint "$tmp/cknan"
test ! -e "$tmp/cknan"
check "no checkpoint after a diverging first epoch" $?

# ------------------------------------------------------- golden MLP (PyTorch)
# x [320,20], y [320], batch 16 fixed by the model: 20 steps = one epoch.
common="--data $mlp/x.npy --labels $mlp/y.npy --no-shuffle --init $mlp/init --threads 1"
expect 0 "trained 20 steps" "$graft" train "$mlp/model.onnx" $common --steps 20 \
    --lr 0.05 --momentum 0.9 --weight-decay 1e-4 --log "$tmp/sgd.log" -o "$tmp/sgd.onnx"
npy_f32 "$mlp/sgd_full/losses.npy" >"$tmp/want"
log_losses "$tmp/sgd.log" >"$tmp/got"
same_losses "$tmp/got" "$tmp/want" 1e-4
check "SGD losses match PyTorch's sgd_full (1e-4 relative)" $?
grep -q '"epoch":1,"loss":.*"seconds"' "$tmp/sgd.log"
check "the log has an epoch line" $?

expect 0 "trained 20 steps" "$graft" train "$mlp/model.onnx" $common --steps 20 \
    --optimizer adamw --lr 1e-3 --weight-decay 0.01 --log "$tmp/adamw.log"
npy_f32 "$mlp/adamw_full/losses.npy" >"$tmp/want"
log_losses "$tmp/adamw.log" >"$tmp/got"
same_losses "$tmp/got" "$tmp/want" 1e-4
check "AdamW losses match PyTorch's adamw_full (1e-4 relative)" $?

# Resume: 10 steps with a checkpoint, then 10 more: the same 20 losses bit
# for bit (shuffled, so the data order is restored too).
run="$graft train $mlp/model.onnx $common --lr 0.05 --momentum 0.9"
$run --steps 20 --log "$tmp/full.log" >/dev/null 2>&1
$run --steps 10 --log "$tmp/a.log" --checkpoint "$tmp/ck" >/dev/null 2>&1
test -f "$tmp/ck/state.json" && test -f "$tmp/ck/fc1.weight.momentum.npy" && \
    test ! -e "$tmp/ck.tmp"
check "checkpoint directory with state.json and momentum" $?
expect 0 "trained 20 steps" $run --steps 20 --log "$tmp/b.log" --resume "$tmp/ck"
log_losses "$tmp/full.log" >"$tmp/want"
log_losses "$tmp/a.log" "$tmp/b.log" >"$tmp/got"
cmp -s "$tmp/got" "$tmp/want" && [ "$(wc -l <"$tmp/got")" -eq 20 ]
check "resumed losses equal the uninterrupted run's" $?
common_shuffled="--data $mlp/x.npy --labels $mlp/y.npy --init $mlp/init --threads 1"
run="$graft train $mlp/model.onnx $common_shuffled --optimizer adam --lr 1e-3"
$run --steps 30 --log "$tmp/sfull.log" >/dev/null 2>&1
$run --steps 13 --log "$tmp/sa.log" --checkpoint "$tmp/ck2" >/dev/null 2>&1
$run --steps 30 --log "$tmp/sb.log" --resume "$tmp/ck2" >/dev/null 2>&1
log_losses "$tmp/sfull.log" >"$tmp/want"
log_losses "$tmp/sa.log" "$tmp/sb.log" >"$tmp/got"
cmp -s "$tmp/got" "$tmp/want" && [ "$(wc -l <"$tmp/got")" -eq 30 ]
check "resumed shuffled Adam run across an epoch equals the uninterrupted one" $?

# Validation, export, eval of the export.
expect 0 "val_acc" "$graft" train "$mlp/model.onnx" --data "$mlp/x.npy" \
    --labels "$mlp/y.npy" --val-split 0.25 --epochs 2 --log "$tmp/val.log"
grep -q '"epoch":2,.*"val_loss":.*"val_acc"' "$tmp/val.log"
check "val_loss and val_acc logged per epoch" $?
expect 0 "loss 1.6146" "$graft" eval "$mlp/model.onnx" --data "$mlp/x.npy" --labels "$mlp/y.npy"
expect 0 "accuracy" "$graft" eval "$tmp/sgd.onnx" --data "$mlp/x.npy" --labels "$mlp/y.npy"
expect 0 "confusion matrix" "$graft" eval "$tmp/sgd.onnx" --data "$mlp/x.npy" \
    --labels "$mlp/y.npy" --verbose

# A BatchNorm model trained, exported, and run: ONNX Runtime's outputs on
# the same export are committed (tests/data/tuned_cnn/README.md).
cnn="$src/tests/data/golden/cnn"
expect 0 "wrote" "$graft" train "$cnn/model.onnx" --data "$cnn/x.npy" --labels "$cnn/y.npy" \
    --batch 8 --no-shuffle --steps 20 --lr 0.05 --momentum 0.9 --weight-decay 1e-4 \
    --init "$cnn/init" --threads 1 -o "$tmp/cnn.onnx"
expect 0 "logits" "$graft" run "$tmp/cnn.onnx" --input "$src/tests/data/tuned_cnn/x.npy" \
    --output-dir "$tmp/cnn_out"
npy_f32 "$tmp/cnn_out/logits.npy" >"$tmp/got"
npy_f32 "$src/tests/data/tuned_cnn/logits_ort.npy" >"$tmp/want"
[ "$(wc -l <"$tmp/got")" -eq 32 ] && paste "$tmp/got" "$tmp/want" | awk '
    { d = $1 - $2; if (d < 0) d = -d; if (d > 1e-4) { print "  " NR ": " $1 " vs " $2; bad = 1 } }
    END { exit bad }'
check "exported CNN (trained BatchNorm statistics) matches ONNX Runtime within 1e-4" $?

# ------------------------------------------------ model edits and schedules
# param_line MODEL NAME: graft inspect's line for parameter NAME (its
# values when small).
param_line() {
    "$graft" inspect "$1" --print 2>/dev/null | grep "^  param  $2: "
}
quick="--data $mlp/x.npy --labels $mlp/y.npy --no-shuffle --threads 1"

# --head N: the export's classifier and output are N wide.
expect 0 "wrote" "$graft" train "$mlp/model.onnx" $quick --steps 3 --head 7 --seed 3 \
    -o "$tmp/head7.onnx"
expect 0 "logits: f32\[16,7\]" "$graft" inspect "$tmp/head7.onnx"
param_line "$tmp/head7.onnx" fc3.weight | grep -q "f32\[7,32\]" && \
    param_line "$tmp/head7.onnx" fc3.bias | grep -q "f32\[7\]" && \
    param_line "$tmp/head7.onnx" fc2.weight | grep -q "f32\[32,32\]"
check "--head 7: fc3 is [7,32] + [7] in the export, fc2 unchanged" $?
expect 0 "logits: f32\[16,7\]" "$graft" inspect "$tmp/head7.onnx" --print
expect 0 "wrote" "$graft" train "$mlp/model.onnx" $quick --steps 1 --head /fc3/Gemm:6 \
    -o "$tmp/head6.onnx"
expect 0 "logits: f32\[16,6\]" "$graft" inspect "$tmp/head6.onnx"
expect 2 "no node named 'nope'" "$graft" train "$mlp/model.onnx" $quick --steps 1 \
    --head nope:6
expect 2 "'/Relu' is Relu; expected a Gemm or MatMul" "$graft" train "$mlp/model.onnx" \
    $quick --steps 1 --head /Relu:6
expect 2 "--head expects \[NODE:\]N" "$graft" train "$mlp/model.onnx" $quick --head 0
# Labels 0..4 need at least 5 classes.
expect 2 "out of range" "$graft" train "$mlp/model.onnx" $quick --steps 1 --head 3

# ------------------------------------------- bottleneck adapters and IA3
# passes/adapters.c; PyTorch goldens in tests/data/golden/adapters.
ad=$src/tests/data/golden/adapters
expect 0 "--adapter-after GLOB\[:dim=D\]" "$graft" train --help
expect 0 "--ia3 GLOB" "$graft" train --help
expect 2 "--adapter-after 'nope' matches no node" "$graft" train "$mlp/model.onnx" $quick \
    --steps 1 --adapter-after nope
expect 2 "dim expects an integer in 1..1048576, got '0'" "$graft" train "$mlp/model.onnx" \
    $quick --steps 1 --adapter-after /fc1/Gemm:dim=0
expect 2 "--ia3 needs a value" "$graft" train "$mlp/model.onnx" $quick --ia3
# The frozen MLP with an adapter after fc1 and IA3 on fc2, from PyTorch's
# adapter values: PyTorch's 20 SGD losses (1e-4 relative).
adq="--adapter-after /fc1/Gemm:dim=8 --ia3 /fc2/Gemm"
expect 0 "wrote" "$graft" train "$mlp/model.onnx" $quick --steps 20 --lr 0.05 --momentum 0.9 \
    --weight-decay 1e-4 $adq --init "$ad/mlp_sgd/init" --log "$tmp/ad.log" -o "$tmp/ad.onnx"
log_losses "$tmp/ad.log" >"$tmp/ad_got"
npy_f32 "$ad/mlp_sgd/losses.npy" >"$tmp/ad_want"
same_losses "$tmp/ad_got" "$tmp/ad_want" 1e-4
check "adapter + IA3 on the frozen MLP: 20 SGD losses match PyTorch's" $?
[ "$(param_line "$tmp/ad.onnx" fc3.bias)" = "$(param_line "$mlp/model.onnx" fc3.bias)" ] &&
    param_line "$tmp/ad.onnx" /fc1/Gemm.adapter.up.weight | grep -q "f32\[8,32\]" &&
    param_line "$tmp/ad.onnx" /fc2/Gemm.ia3 | grep -q "f32\[32\]"
check "adapters: the model's own parameters stay, the adapters are exported" $?
# Composition: --train-only trains the head too; --freeze freezes an
# adapter (its values as with --lr 0); --head resizes an adapter after it.
adq="--adapter-after /fc1/Gemm:dim=4 --ia3 /fc3/Gemm"
for run in "lr0 --lr 0" "only --train-only fc3.*" "frz --freeze /fc1/Gemm.adapter.*"; do
    set -- $run
    name=$1
    shift
    "$graft" train "$mlp/model.onnx" $quick --steps 3 --lr 0.1 $adq "$@" \
        -o "$tmp/ad_$name.onnx" >/dev/null 2>&1
done
[ "$(param_line "$tmp/ad_only.onnx" fc3.bias)" != "$(param_line "$mlp/model.onnx" fc3.bias)" ] &&
    [ "$(param_line "$tmp/ad_frz.onnx" /fc1/Gemm.adapter.down.bias)" = \
      "$(param_line "$tmp/ad_lr0.onnx" /fc1/Gemm.adapter.down.bias)" ] &&
    [ "$(param_line "$tmp/ad_frz.onnx" /fc3/Gemm.ia3)" != \
      "$(param_line "$tmp/ad_lr0.onnx" /fc3/Gemm.ia3)" ]
check "adapters compose with --train-only and --freeze" $?
expect 0 "wrote" "$graft" train "$mlp/model.onnx" $quick --steps 2 --head 7 \
    --adapter-after /fc3/Gemm --ia3 /fc3/Gemm -o "$tmp/ad_head.onnx"
param_line "$tmp/ad_head.onnx" /fc3/Gemm.adapter.up.bias | grep -q "f32\[7\]" &&
    param_line "$tmp/ad_head.onnx" /fc3/Gemm.ia3 | grep -q "f32\[7\]"
check "--head 7 then an adapter and IA3 on the new head: 7 wide" $?
# Checkpoints hold the adapters by name: 6 + resumed 6 = 12 steps at once.
"$graft" train "$mlp/model.onnx" $quick --steps 12 $adq --log "$tmp/adf.log" >/dev/null 2>&1
"$graft" train "$mlp/model.onnx" $quick --steps 6 $adq --checkpoint "$tmp/adck" >/dev/null 2>&1
"$graft" train "$mlp/model.onnx" $quick --steps 12 $adq --resume "$tmp/adck" \
    --log "$tmp/adr.log" >/dev/null 2>&1
[ -f "$tmp/adck/_fc3_Gemm.ia3.npy" ] &&
    [ "$(log_losses "$tmp/adf.log" | tail -6)" = "$(log_losses "$tmp/adr.log")" ]
check "adapters: --checkpoint/--resume give the uninterrupted losses" $?
# Exports against ONNX Runtime (tests/data/tuned_adapters/README.md).
tuned=$src/tests/data/tuned_adapters
tf="$src/tests/data/golden/transformer"
"$graft" train "$cnn/model.onnx" --data "$cnn/x.npy" --labels "$cnn/y.npy" --batch 8 \
    --no-shuffle --steps 20 --lr 0.05 --momentum 0.9 --weight-decay 1e-4 \
    --adapter-after /conv1/Conv:dim=4 --adapter-after /conv2/Conv --ia3 /res_conv2/Conv \
    --init "$ad/cnn_sgd/init" --threads 1 -o "$tmp/ad_cnn.onnx" >/dev/null 2>&1
"$graft" train "$tf/model.onnx" --data "$tf/x.npy" --labels "$tf/y.npy" --batch 16 \
    --no-shuffle --steps 20 --optimizer adamw --lr 0.001 --adapter-after /ff2/Add:dim=4 \
    --ia3 /k/Add --ia3 /v/Add --train-only 'head.*' \
    --init "$ad/transformer_adamw_head/init" --threads 1 -o "$tmp/ad_transformer.onnx" \
    >/dev/null 2>&1
for m in "cnn $src/tests/data/tuned_cnn/x.npy 32" "transformer $tuned/tokens.npy 48"; do
    set -- $m
    "$graft" run "$tmp/ad_$1.onnx" --input "$2" --output-dir "$tmp/ad_$1_out" >/dev/null 2>&1
    npy_f32 "$tmp/ad_$1_out/logits.npy" >"$tmp/got"
    npy_f32 "$tuned/$1_logits_ort.npy" >"$tmp/want"
    [ "$(wc -l <"$tmp/got")" -eq "$3" ] && paste "$tmp/got" "$tmp/want" | awk '
        { d = $1 - $2; if (d < 0) d = -d; if (d > 1e-4) { print "  " NR ": " $1 " vs " $2; bad = 1 } }
        END { exit bad }'
    check "exported $1 with adapters and IA3 matches ONNX Runtime within 1e-4" $?
done

# Freezing: frozen parameters leave the export unchanged, trained ones move.
expect 0 "wrote" "$graft" train "$mlp/model.onnx" $quick --steps 3 --lr 0.1 \
    --train-only 'fc3.*' -o "$tmp/only.onnx"
expect 0 "wrote" "$graft" train "$mlp/model.onnx" $quick --steps 3 --lr 0.1 \
    --freeze 'fc3.*' -o "$tmp/frozen.onnx"
[ "$(param_line "$tmp/only.onnx" fc3.bias)" != "$(param_line "$mlp/model.onnx" fc3.bias)" ] &&
    [ "$(param_line "$tmp/frozen.onnx" fc3.bias)" = "$(param_line "$mlp/model.onnx" fc3.bias)" ]
check "--train-only fc3.* trains fc3.bias, --freeze fc3.* keeps it" $?
expect 2 "--freeze 'fc9.\*' matches no parameter" "$graft" train "$mlp/model.onnx" $quick \
    --steps 1 --freeze 'fc9.*'
expect 2 "--train-only 'x\*' matches no parameter" "$graft" train "$mlp/model.onnx" $quick \
    --steps 1 --train-only 'x*'
expect 2 "no parameter is left to train" "$graft" train "$mlp/model.onnx" $quick --steps 1 \
    --freeze '*'
expect 2 "--freeze-until: no node named '/nope'" "$graft" train "$mlp/model.onnx" $quick \
    --steps 1 --freeze-until /nope

# The CNN: bn1 frozen keeps its statistics; res_bn1 trains and updates them.
cnnq="--data $cnn/x.npy --labels $cnn/y.npy --batch 8 --no-shuffle --threads 1 --steps 2"
expect 0 "wrote" "$graft" train "$cnn/model.onnx" $cnnq --freeze 'bn1.*' -o "$tmp/cbn.onnx"
expect 0 "logits: f32\[8,4\]" "$graft" inspect "$tmp/cbn.onnx"
[ "$(param_line "$tmp/cbn.onnx" bn1.running_mean)" = \
  "$(param_line "$cnn/model.onnx" bn1.running_mean)" ] &&
    [ "$(param_line "$tmp/cbn.onnx" bn1.bias)" = "$(param_line "$cnn/model.onnx" bn1.bias)" ] &&
    [ "$(param_line "$tmp/cbn.onnx" res_bn1.running_mean)" != \
      "$(param_line "$cnn/model.onnx" res_bn1.running_mean)" ]
check "--freeze bn1.*: bn1's statistics unchanged, res_bn1's updated" $?
expect 0 "wrote" "$graft" train "$cnn/model.onnx" $cnnq --freeze-until /conv2/Conv \
    -o "$tmp/cut.onnx"
[ "$(param_line "$tmp/cut.onnx" res_bn1.running_mean)" = \
  "$(param_line "$cnn/model.onnx" res_bn1.running_mean)" ] &&
    [ "$(param_line "$tmp/cut.onnx" res_bn2.bias)" = \
      "$(param_line "$cnn/model.onnx" res_bn2.bias)" ] &&
    [ "$(param_line "$tmp/cut.onnx" fc.bias)" != "$(param_line "$cnn/model.onnx" fc.bias)" ]
check "--freeze-until /conv2/Conv: the residual block is unchanged, fc trains" $?

# --label-smoothing e: PyTorch's loss is linear in e, (1-e)*nll + e*uniform,
# so the first step's loss at 0.5 is the mean of those at 0 and 1.
for e in 0 0.5 1; do
    "$graft" train "$mlp/model.onnx" $quick --steps 1 --label-smoothing $e \
        --log "$tmp/ls$e.log" >/dev/null 2>&1
    log_losses "$tmp/ls$e.log" >"$tmp/ls$e"
done
paste "$tmp/ls0" "$tmp/ls0.5" "$tmp/ls1" | awk '
    { m = ($1 + $3) / 2; d = $2 - m; if (d < 0) d = -d;
      if (NF != 3 || d > 1e-6 * m || $1 == $2) { print "  " $0; bad = 1 } }
    END { exit bad || NR != 1 }'
check "--label-smoothing 0.5 gives the mean of the losses at 0 and 1" $?
expect 2 "between 0 and 1" "$graft" train "$mlp/model.onnx" $quick --steps 1 \
    --label-smoothing 1.5
expect 2 "(--loss ce) only" "$graft" train "$mlp/model.onnx" $quick --steps 1 \
    --loss mse --label-smoothing 0.1

# log_lrs LOG: the "lr" of every step line.
log_lrs() {
    grep '"step"' "$1" | sed 's/.*"lr":\([^,}]*\).*/\1/'
}
# lr_check NAME LOG AWK-EXPRESSION-OF-t: logged lr of step t (1-based)
# against the documented formula, 1e-6 relative.
lr_check() {
    log_lrs "$2" | awk -v name="$1" "
        { t = NR; want = $3; d = \$1 - want; if (d < 0) d = -d;
          if (d > 1e-6 * (want < 0 ? -want : want) + 1e-12) { print \"  \" name \" step \" t \": \" \$1 \" vs \" want; bad = 1 } }
        END { exit bad || NR == 0 }"
    check "$1: logged lr as documented" $?
}
pi=3.14159265358979
# cosine: lr * (1 + cos(pi * k / K)) / 2, k = 0.. the optimizer step, K steps.
"$graft" train "$mlp/model.onnx" $quick --steps 8 --lr 0.1 --schedule cosine \
    --log "$tmp/cos.log" >/dev/null 2>&1
lr_check "--schedule cosine" "$tmp/cos.log" "0.1 * (1 + cos($pi * (t - 1) / 8)) / 2"
# warm-up from 0 over N optimizer steps: lr * k / N while k < N.
"$graft" train "$mlp/model.onnx" $quick --steps 6 --lr 0.1 --warmup 4 \
    --log "$tmp/warm.log" >/dev/null 2>&1
lr_check "--warmup 4" "$tmp/warm.log" "(t - 1 < 4) ? 0.1 * (t - 1) / 4 : 0.1"
# --accumulate 2: two batches per optimizer step, and the schedule counts
# optimizer steps (8 batches = 4 steps).
"$graft" train "$mlp/model.onnx" $quick --steps 8 --lr 0.1 --accumulate 2 --warmup 2 \
    --schedule cosine --log "$tmp/acc.log" >/dev/null 2>&1
lr_check "--accumulate 2 --warmup 2 --schedule cosine" "$tmp/acc.log" \
    "0.1 * (1 + cos($pi * int((t - 1) / 2) / 4)) / 2 * (int((t - 1) / 2) < 2 ? int((t - 1) / 2) / 2 : 1)"
# step:E:G: lr * G every E epochs (20 batches an epoch).
"$graft" train "$mlp/model.onnx" $quick --epochs 3 --lr 0.1 --schedule step:1:0.5 \
    --log "$tmp/stepd.log" >/dev/null 2>&1
lr_check "--schedule step:1:0.5" "$tmp/stepd.log" "0.1 * 0.5 ^ int((t - 1) / 20)"
# --accumulate 2: the first batch only accumulates (the second batch's loss
# is that of the initial weights, as with --lr 0); the second applies.
for run in "acc --accumulate 2 --lr 0.1" "lr0 --lr 0" "plain --lr 0.1"; do
    set -- $run
    name=$1
    shift
    "$graft" train "$mlp/model.onnx" $quick --steps 3 "$@" --log "$tmp/$name.log" \
        >/dev/null 2>&1
    log_losses "$tmp/$name.log" >"$tmp/$name"
done
[ "$(sed -n 2p "$tmp/acc")" = "$(sed -n 2p "$tmp/lr0")" ] &&
    [ "$(sed -n 2p "$tmp/acc")" != "$(sed -n 2p "$tmp/plain")" ] &&
    [ "$(sed -n 3p "$tmp/acc")" != "$(sed -n 3p "$tmp/lr0")" ]
check "--accumulate 2: weights move only on every second batch" $?

# ------------------------- per-layer learning rates, L2-SP, --dry-run (issue 6)
for opt in --lr-group --layer-decay --l2sp --dry-run --verbose; do
    expect 0 "$opt" "$graft" train --help
done
# The MLP's three Linear layers are three depths; no --data needed.
expect 0 "group 1 (depth 1): lr 0.0025 (x 0.25), 2 tensors, 672 values, 2688 bytes" \
    "$graft" train "$mlp/model.onnx" --dry-run --layer-decay 0.5
expect 0 "group 3 (depth 3): lr 0.01 (x 1)" \
    "$graft" train "$mlp/model.onnx" --dry-run --layer-decay 0.5
expect 0 "fc3.weight .*new head" "$graft" train "$mlp/model.onnx" --dry-run --head 3
expect 0 "frozen: 2 tensors, 672 values, 2688 bytes" \
    "$graft" train "$mlp/model.onnx" --dry-run --freeze 'fc1.*'
expect 0 "lr 0 (x 0)" "$graft" train "$mlp/model.onnx" --dry-run --lr-group 'fc3.*=0'
expect 0 "lr 0.003 (x 3)" "$graft" train "$mlp/model.onnx" --dry-run --optimizer adam \
    --lr-group 'fc*=2' --lr-group 'fc2.*=3'
expect 0 "l2sp: 0.5 \* ||w - w0||^2 over 6 pretrained" \
    "$graft" train "$mlp/model.onnx" --dry-run --l2sp 0.5
expect 0 "adapters added: 0 tensors" "$graft" train "$mlp/model.onnx" --dry-run
expect 2 "--lr-group expects GLOB=FACTOR" "$graft" train "$mlp/model.onnx" --dry-run \
    --lr-group fc1
expect 2 "--lr-group 'conv\*' matches no parameter" "$graft" train "$mlp/model.onnx" \
    --dry-run --lr-group 'conv*=2'
expect 2 "--lr-group expects a number >= 0" "$graft" train "$mlp/model.onnx" --dry-run \
    --lr-group 'fc1.*=-1'
expect 2 "--layer-decay expects a number > 0" "$graft" train "$mlp/model.onnx" --dry-run \
    --layer-decay 0
expect 2 "--l2sp expects ALPHA\[,BETA\]" "$graft" train "$mlp/model.onnx" --dry-run \
    --l2sp 1,x
expect 2 "--l2sp expects ALPHA\[,BETA\]" "$graft" train "$mlp/model.onnx" --dry-run \
    --l2sp -1
expect 1 "cannot\|No such" "$graft" train "$tmp/missing.onnx" --dry-run
# --verbose: the same report, then training.
expect 0 "trained 2 steps" "$graft" train "$mlp/model.onnx" $quick --steps 2 --verbose \
    --layer-decay 0.9 --lr-group 'fc1.*=0'
expect 0 "group 1 (depth 1): lr 0 (x 0)" "$graft" train "$mlp/model.onnx" $quick --steps 2 \
    --verbose --layer-decay 0.9 --lr-group 'fc1.*=0'
# --l2sp: the penalty is 0 at w = w0 (step 1: same loss as without), then
# part of the reported loss; with a new head BETA*||w||^2 counts from step 1.
for run in "none" "l2sp --l2sp 0.5" "head --head 5" "headl2 --head 5 --l2sp 0,0.5"; do
    set -- $run
    name=$1
    shift
    "$graft" train "$mlp/model.onnx" $quick --steps 3 --lr 0.1 "$@" \
        --log "$tmp/$name.log" >/dev/null 2>&1
    log_losses "$tmp/$name.log" >"$tmp/$name"
done
[ "$(sed -n 1p "$tmp/none")" = "$(sed -n 1p "$tmp/l2sp")" ] &&
    [ "$(sed -n 3p "$tmp/none")" != "$(sed -n 3p "$tmp/l2sp")" ] &&
    awk -v a="$(sed -n 1p "$tmp/head")" -v b="$(sed -n 1p "$tmp/headl2")" 'BEGIN { exit !(b > a) }'
check "--l2sp: no penalty at w0, a penalty once weights move, BETA on a new head" $?
# ------------------------------------------------------------------- LoRA
# --lora through the CLI against the PyTorch LoRA golden (adapters loaded
# with --init), merged and unmerged exports giving the same outputs, the
# unmerged exports against ONNX Runtime (tests/data/lora_ort), --save-adapters
# and `graft run --adapter`.
lora=$src/tests/data/golden/lora_mlp
lopt='*.weight:rank=4,alpha=8'
expect 0 "--lora GLOB" "$graft" train --help
expect 0 "--save-adapters DIR" "$graft" train --help
expect 0 "--no-merge" "$graft" train --help
expect 0 "--adapter DIR" "$graft" run --help
expect 2 "glob is empty" "$graft" train "$lora/model.onnx" --data "$lora/x.npy" --lora :rank=2
expect 2 "unknown option or value out of range" "$graft" train "$lora/model.onnx" \
    --data "$lora/x.npy" --lora 'fc*:rank=2,size=3'
expect 2 "--lora nothing\* matches no Gemm, MatMul or Conv weight" "$graft" train \
    "$lora/model.onnx" --data "$lora/x.npy" --labels "$lora/y.npy" --lora 'nothing*'
expect 2 "--save-adapters needs --lora" "$graft" train "$lora/model.onnx" \
    --data "$lora/x.npy" --save-adapters "$tmp/ad"
expect 2 "no parameter 'fc[0-9].weight.lora_[AB]'" "$graft" train "$lora/model.onnx" \
    --data "$lora/x.npy" --labels "$lora/y.npy" --init "$lora/init"
lrun="$graft train $lora/model.onnx --data $lora/x.npy --labels $lora/y.npy --no-shuffle
      --threads 1 --steps 20 --lora $lopt"
expect 0 "trained 20 steps" $lrun --init "$lora/init" --lr 0.05 --momentum 0.9 \
    --weight-decay 1e-4 --log "$tmp/lora.log" -o "$tmp/merged.onnx" --save-adapters "$tmp/ad"
npy_f32 "$lora/sgd/losses.npy" >"$tmp/want"
log_losses "$tmp/lora.log" >"$tmp/got"
same_losses "$tmp/got" "$tmp/want" 1e-4
check "--lora SGD losses match PyTorch's LoRA within 1e-4" $?
expect 0 "trained 20 steps" $lrun --init "$lora/init" --lr 0.05 --momentum 0.9 \
    --weight-decay 1e-4 -o "$tmp/unmerged.onnx" --no-merge
! grep -q lora_A "$tmp/merged.onnx" && grep -q lora_A "$tmp/unmerged.onnx"
check "--merge folds the adapters away, --no-merge keeps them" $?
[ "$(ls "$tmp/ad" | wc -l)" -eq 7 ] && [ -f "$tmp/ad/fc3.weight.lora_B.npy" ] &&
    grep -q '"weight": "fc2.weight", "form": "x.W^T", "rank": 4, "alpha": 8' "$tmp/ad/adapters.json"
check "--save-adapters writes six tensors and adapters.json" $?
ort=$src/tests/data/lora_ort
cp "$ort/mlp_x.npy" "$tmp/x16.npy"
for m in merged unmerged; do
    expect 0 "logits" "$graft" run "$tmp/$m.onnx" --input "x=$tmp/x16.npy" --output-dir "$tmp/o_$m"
done
expect 0 "logits" "$graft" run "$lora/model.onnx" --adapter "$tmp/ad" --input "x=$tmp/x16.npy" \
    --output-dir "$tmp/o_adapter"
expect 0 "logits" "$graft" run "$lora/model.onnx" --input "x=$tmp/x16.npy" --output-dir "$tmp/o_base"
# within A B TOL: the f32 .npy files A and B (80 values) agree within TOL.
within() {
    npy_f32 "$1" >"$tmp/a" && npy_f32 "$2" >"$tmp/b" && [ "$(wc -l <"$tmp/a")" -eq 80 ] &&
        paste "$tmp/a" "$tmp/b" | awk -v tol="$3" '
            { d = $1 - $2; if (d < 0) d = -d; if (d > tol) bad = 1 } END { exit bad }'
}
within "$tmp/o_merged/logits.npy" "$tmp/o_unmerged/logits.npy" 1e-5
check "merged and unmerged exports agree within 1e-5" $?
within "$tmp/o_unmerged/logits.npy" "$ort/mlp_logits_ort.npy" 1e-5
check "the unmerged export matches ONNX Runtime's outputs within 1e-5" $?
within "$tmp/o_merged/logits.npy" "$tmp/o_adapter/logits.npy" 1e-5
check "run --adapter gives the merged export's outputs" $?
! within "$tmp/o_merged/logits.npy" "$tmp/o_base/logits.npy" 1e-3
check "the adapters change the outputs" $?
expect 0 "trained 1 steps" $lrun --init "$tmp/ad" --steps 1
expect 2 "--adapter $tmp/none: cannot open" "$graft" run "$lora/model.onnx" --adapter "$tmp/none" \
    --input "x=$tmp/x16.npy" --output-dir "$tmp/o_none"
expect 2 "no Gemm, MatMul or Conv weight" "$graft" run "$src/tests/data/golden/cnn/model.onnx" \
    --adapter "$tmp/ad" --input "$src/tests/data/tuned_cnn/x.npy" --output-dir "$tmp/o_cnn"
tl=$src/tests/data/golden/lora_transformer
expect 0 "wrote" "$graft" train "$tl/model.onnx" --data "$tl/x.npy" --labels "$tl/y.npy" \
    --no-shuffle --threads 1 --steps 20 --lora "$lopt" --init "$tl/init" --optimizer adamw \
    --no-merge -o "$tmp/tu.onnx"
expect 0 "logits" "$graft" run "$tmp/tu.onnx" --input "tokens=$ort/transformer_tokens.npy" \
    --output-dir "$tmp/o_tu"
npy_f32 "$tmp/o_tu/logits.npy" >"$tmp/got"
npy_f32 "$ort/transformer_logits_ort.npy" >"$tmp/want"
[ "$(wc -l <"$tmp/got")" -eq 48 ] && paste "$tmp/got" "$tmp/want" | awk '
    { d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5) bad = 1 } END { exit bad }'
check "unmerged transformer export (MatMul of Transpose) matches ONNX Runtime within 1e-5" $?
# Checkpoints hold the adapters and their optimizer state: a resumed LoRA
# run (with adapter dropout) repeats the uninterrupted one bit for bit.
lres="$lrun,dropout=0.2 --optimizer adamw --init $lora/init"
$lres --log "$tmp/lfull.log" >/dev/null 2>&1
$lres --steps 8 --log "$tmp/la.log" --checkpoint "$tmp/lck" >/dev/null 2>&1
[ -f "$tmp/lck/fc1.weight.lora_A.m.npy" ]
check "a LoRA checkpoint holds the adapters' AdamW state" $?
$lres --log "$tmp/lb.log" --resume "$tmp/lck" >/dev/null 2>&1
log_losses "$tmp/lfull.log" >"$tmp/want"
log_losses "$tmp/la.log" "$tmp/lb.log" >"$tmp/got"
[ "$(wc -l <"$tmp/want")" -eq 20 ] && cmp -s "$tmp/got" "$tmp/want"
check "--lora --resume repeats the uninterrupted run's losses exactly" $?
mkdir -p "$tmp/notad" && touch "$tmp/notad/keep"
expect 2 "not replacing it" $lrun --steps 1 --save-adapters "$tmp/notad"

echo "train_test: $passed passed, $failures failed"
[ "$failures" -eq 0 ]
