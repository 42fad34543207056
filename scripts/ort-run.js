// ort-run.js MODEL [OUT_DIR] [NAME=FILE.npy]... [--threads N] [--bench N]
//            [--make-inputs DIR --batch N [--dims CxHxW]]
// Runs an ONNX model with ONNX Runtime (npm onnxruntime-node@1.30.0,
// installed with --ignore-scripts) on float32/int64 .npy inputs and writes
// every output as OUT_DIR/<name>.npy; with --bench N prints the median and
// minimum latency of N runs after one warm-up. --make-inputs DIR writes an
// input per model input instead of reading them: arange(n)/n in the input's
// shape, dynamic dims taken as --batch (dim 0) or 1 (or [batch, --dims]
// for every input), and prints graft's
// --input arguments for them. Reference tool only: graft's build and tests
// do not need Node.js (its outputs are committed).
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require(process.env.ORT_NODE || 'onnxruntime-node');

const DTYPES = { '<f4': ['float32', Float32Array], '<i8': ['int64', BigInt64Array],
                 '<f8': ['float64', Float64Array], '<i4': ['int32', Int32Array] };

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(file + ': not a .npy file');
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',')
    .map((s) => s.trim()).filter((s) => s.length).map(Number);
  const [type, Ctor] = DTYPES[descr] || (() => { throw new Error(file + ': dtype ' + descr); })();
  const data = buf.subarray(start + hlen);
  const copy = new Uint8Array(data.length);
  copy.set(data);
  return new ort.Tensor(type, new Ctor(copy.buffer), shape);
}

function writeNpy(file, tensor) {
  const descr = { float32: '<f4', int64: '<i8', float64: '<f8', int32: '<i4', bool: '|b1' }[tensor.type];
  const shape = tensor.dims.length === 1 ? `(${tensor.dims[0]},)` : `(${tensor.dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1; head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const data = Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), data]));
}

async function main() {
  const args = process.argv.slice(2);
  let threads = 1, bench = 0, makeInputs = null, batch = 1, dimsOverride = null;
  const feeds = {}, rest = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--threads') threads = Number(args[++i]);
    else if (args[i] === '--bench') bench = Number(args[++i]);
    else if (args[i] === '--make-inputs') makeInputs = args[++i];
    else if (args[i] === '--batch') batch = Number(args[++i]);
    else if (args[i] === '--dims') dimsOverride = args[++i].split('x').map(Number);
    else if (args[i].includes('=')) {
      const [name, file] = args[i].split('=');
      feeds[name] = readNpy(file);
    } else rest.push(args[i]);
  }
  const [model, outDir] = rest;
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all' });
  if (makeInputs) {
    fs.mkdirSync(makeInputs, { recursive: true });
    const flags = [];
    for (const meta of session.inputMetadata) {
      let dims = meta.shape.map((d, i) => (typeof d === 'number' && d >= 0 ? d : i === 0 ? batch : 1));
      if (dimsOverride) dims = [batch, ...dimsOverride];
      const n = dims.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = i / n;
      const file = path.join(makeInputs, meta.name.replace(/[^A-Za-z0-9._-]/g, '_') + '.npy');
      const t = new ort.Tensor('float32', data, dims);
      writeNpy(file, t);
      feeds[meta.name] = t;
      flags.push(`--input ${meta.name}=${file}`);
    }
    console.log(flags.join(' '));
  }
  let results = await session.run(feeds);
  if (bench > 0) {
    const times = [];
    for (let i = 0; i < bench; i++) {
      const t0 = process.hrtime.bigint();
      results = await session.run(feeds);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    times.sort((a, b) => a - b);
    console.log(`ort ${path.basename(model)} threads=${threads} median_ms=${times[times.length >> 1].toFixed(3)} min_ms=${times[0].toFixed(3)}`);
  }
  if (outDir) {
    fs.mkdirSync(outDir, { recursive: true });
    for (const name of session.outputNames)
      writeNpy(path.join(outDir, name.replace(/[^A-Za-z0-9._-]/g, '_') + '.npy'), results[name]);
  }
}
main().catch((e) => { console.error('ort-run: ' + e.message); process.exit(1); });
