#!/usr/bin/python3
"""bench/batch_model.py MODEL.onnx N OUT.onnx: a copy of MODEL whose batch is N.

The light models (ONNX model zoo, Caffe2 exports) fix their batch at 1:
every graph input that is not an initializer and every graph output gets
dim 0 = N, value_info shapes are dropped, and every constant Reshape target
that starts with the batch (first element 1, the node's data input an
activation, not a weight) starts with N instead. Benchmark helper only
(bench/run.sh, batch 32); graft itself needs no Python."""
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def main(src, n, dst):
    m = onnx.load(src)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    consts = {nd.output[0]: nd for nd in g.node if nd.op_type == "Constant"}
    for v in list(g.input) + list(g.output):
        if v.name in inits:
            continue
        dims = v.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_param")
            dims[0].dim_value = n
    del g.value_info[:]
    for nd in g.node:
        if nd.op_type != "Reshape" or nd.input[0] in inits:
            continue
        target = nd.input[1]
        if target in inits:
            shape = numpy_helper.to_array(inits[target])
            if shape.size and shape[0] == 1:
                shape = shape.copy()
                shape[0] = n
                inits[target].CopyFrom(numpy_helper.from_array(shape.astype(np.int64), target))
        elif target in consts:
            attr = consts[target].attribute[0]
            shape = numpy_helper.to_array(attr.t)
            if shape.size and shape[0] == 1:
                shape = shape.copy()
                shape[0] = n
                attr.t.CopyFrom(numpy_helper.from_array(shape.astype(np.int64), target))
    onnx.checker.check_model(m)
    onnx.save(m, dst)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
