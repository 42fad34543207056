#!/bin/sh
# The main job on the default example: install what is missing, build,
# fetch the PaddleOCR classifier and describe it with `graft inspect`.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DGRAFT_TESTS=OFF
cmake --build build -j"$(nproc)"
sh scripts/fetch-models.sh
./build/tools/graft inspect models/ch_ppocr_mobile_v2.0_cls_infer.onnx --batch 1
