#!/bin/sh
# The main job on the default example: install what is missing, build,
# fetch the PaddleOCR classifier, describe it with `graft inspect`, then
# compile and run it on text-line crops of a scanned page
# (tests/data/ocr_cls/input.npy) with `graft run`. Training arrives with
# issue 4.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DGRAFT_TESTS=OFF
cmake --build build -j"$(nproc)"
sh scripts/fetch-models.sh
./build/tools/graft inspect models/ch_ppocr_mobile_v2.0_cls_infer.onnx --batch 1
./build/tools/graft run models/ch_ppocr_mobile_v2.0_cls_infer.onnx \
    --input tests/data/ocr_cls/input.npy --output-dir out --verbose
