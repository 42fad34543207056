#!/bin/sh
# The main job on the default example: install what is missing, build,
# fetch the PaddleOCR text-direction classifier, then fine-tune it on
# Fashion-MNIST (Debian dataset-fashion-mnist) with a new 10-class head:
# `graft train` prints the loss as it goes, the test accuracy and the time
# per epoch, and writes out/tuned.onnx; `graft eval` checks the export.
# EPOCHS (default 3) sets the length.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DGRAFT_TESTS=OFF
cmake --build build -j"$(nproc)"
sh scripts/fetch-models.sh
F=/usr/share/datasets/fashion-mnist
mkdir -p out
./build/tools/graft train models/ch_ppocr_mobile_v2.0_cls_infer.onnx \
    --data $F/train-images-idx3-ubyte.gz --labels $F/train-labels-idx1-ubyte.gz \
    --val-data $F/t10k-images-idx3-ubyte.gz --val-labels $F/t10k-labels-idx1-ubyte.gz \
    --shape x=1x3x32x32 --fit pad --normalize 0.5,0.5 --head 10 \
    --optimizer adamw --lr 1e-3 --batch 64 --epochs "${EPOCHS:-3}" \
    --log out/train.log -o out/tuned.onnx
./build/tools/graft eval out/tuned.onnx \
    --data $F/t10k-images-idx3-ubyte.gz --labels $F/t10k-labels-idx1-ubyte.gz \
    --shape x=1x3x32x32 --fit pad --normalize 0.5,0.5 --batch 64
