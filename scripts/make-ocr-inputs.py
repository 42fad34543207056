#!/usr/bin/python3
"""Makes tests/data/ocr_cls/input.npy: text-line crops of the scanned page in
Debian's python3-skimage (skimage/data/page.png), two upright and two turned
by 180 degrees, preprocessed as PaddleOCR's direction classifier expects:
resized to height 48 keeping the aspect ratio, right-padded to 48x192, grey
copied to RGB, (x/255 - 0.5)/0.5, layout [N,3,48,192].
Needs /usr/bin/python3 with python3-skimage and python3-numpy; not needed to
build or test graft (the output is committed)."""
import sys
import numpy as np
import skimage.io
import skimage.transform

page = skimage.io.imread(skimage.data.__path__[0] + '/page.png')
# Text lines of the page (row range, column range), picked by eye.
crops = [(4, 36, 5, 133), (44, 66, 5, 93), (86, 108, 5, 93), (107, 129, 70, 158)]
batch = []
for i, (r0, r1, c0, c1) in enumerate(crops):
    img = page[r0:r1, c0:c1].astype(np.float64)
    h, w = img.shape
    nw = min(192, int(round(w * 48.0 / h)))
    img = skimage.transform.resize(img, (48, nw), order=1, preserve_range=True, anti_aliasing=True)
    canvas = np.zeros((48, 192), dtype=np.float64)
    norm = (img / 255.0 - 0.5) / 0.5
    canvas[:, :nw] = norm
    if i % 2 == 1:  # turned by 180 degrees
        canvas[:, :nw] = norm[::-1, ::-1]
    batch.append(np.stack([canvas] * 3))
x = np.stack(batch).astype(np.float32)
out = sys.argv[1] if len(sys.argv) > 1 else 'tests/data/ocr_cls/input.npy'
np.save(out, x)
print(out, x.shape, float(x.min()), float(x.max()))
