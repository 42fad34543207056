#!/bin/sh
# The README's transfer-learning table: the main job (PaddleOCR classifier
# fine-tuned on Fashion-MNIST with a new 10-class head, AdamW, batch 64; see
# scripts/demo.sh) trained four ways, EPOCHS (default 3) epochs each:
# every parameter, LoRA adapters on the convolutions, bottleneck adapters
# after them, and progressive unfreezing. Prints one markdown row per method:
# trainable parameters (graft train --dry-run), test accuracy after the last
# epoch, seconds per epoch. Needs a build in BUILD (default build) and the
# model (scripts/fetch-models.sh). Run it on an idle machine.
set -eu
cd "$(dirname "$0")/.."
graft=${BUILD:-build}/tools/graft
F=/usr/share/datasets/fashion-mnist
M=models/ch_ppocr_mobile_v2.0_cls_infer.onnx
common="--shape x=1x3x32x32 --head 10 --optimizer adamw --lr 1e-3 --batch 64"
data="--data $F/train-images-idx3-ubyte.gz --labels $F/train-labels-idx1-ubyte.gz
      --val-data $F/t10k-images-idx3-ubyte.gz --val-labels $F/t10k-labels-idx1-ubyte.gz
      --fit pad --normalize 0.5,0.5 --epochs ${EPOCHS:-3} --threads ${THREADS:-2}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

row() { # name, options...
    name=$1
    shift
    # shellcheck disable=SC2086
    n=$("$graft" train "$M" $common "$@" --dry-run | sed -n 's/^trainable: [0-9]* tensors, \([0-9]*\) values.*/\1/p')
    # shellcheck disable=SC2086
    "$graft" train "$M" $common $data "$@" > "$out/log" 2>&1
    acc=$(sed -n 's/^validation: .*accuracy \([0-9.]*\).*/\1/p' "$out/log" | tail -1)
    sec=$(sed -n 's/^trained .*; \([0-9.]*\) s per epoch/\1/p' "$out/log")
    printf '| %s | `%s` | %s | %s%% | %.0f |\n' "$name" "$*" "$n" \
        "$(awk -v a="$acc" 'BEGIN { printf "%.2f", 100 * a }')" "$sec"
}

echo "| method | options (besides the main job's) | trainable parameters | test accuracy | s / epoch |"
echo "|---|---|---|---|---|"
row "full fine-tuning"
row "LoRA on every convolution" --lora 'conv2d_*:rank=4'
row "bottleneck adapters" --adapter-after 'p2o.Conv.*'
row "progressive unfreezing" --unfreeze-every 1 --unfreeze-groups 3
