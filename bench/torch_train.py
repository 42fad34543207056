#!/usr/bin/python3
"""Times PyTorch training steps on the four golden models (scripts/make-goldens.py):
mlp, cnn, mobilenet, transformer; full and frozen (only the final Linear
trains, frozen BNs in eval mode); SGD (lr 0.05, momentum 0.9, wd 1e-4) and
AdamW (lr 1e-3, wd 0.01); 1 and 2 threads. One step = zero_grad, forward,
cross-entropy, backward, optimizer step. Reports the median of --steps timed
steps after --warmup untimed ones, and the peak RSS of the process. Each case
runs in a fresh subprocess so that peaks do not accumulate.

    /usr/bin/python3 bench/torch_train.py [--steps 50] [--warmup 10]
        [--threads 1,2] [--models mlp,cnn,...] [--batch N] [--export DIR]

Output: one JSON line per case on stdout,
{"model","mode","optimizer","threads","batch","step_ms","peak_rss_kb"}.
--export DIR also writes DIR/<model>.onnx (training-mode export at the
benchmark batch size, initial weights) so graft can be timed on the same
models; with --export-only nothing is timed.

The script re-executes itself with /usr/lib/x86_64-linux-gnu/openblas-openmp
first on LD_LIBRARY_PATH (Debian's reference BLAS is slow).
Needs /usr/bin/python3 with python3-torch, python3-onnx, python3-numpy."""
import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OPENBLAS = '/usr/lib/x86_64-linux-gnu/openblas-openmp'
BENCH_BATCH = {'mlp': 32, 'cnn': 32, 'mobilenet': 32, 'transformer': 32}
OPTIMIZERS = {'sgd': 'sgd', 'adamw': 'adamw'}


def load_goldens():
    path = os.path.join(HERE, '..', 'scripts', 'make-goldens.py')
    spec = importlib.util.spec_from_file_location('make_goldens', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_case(model, mode, opt, threads, batch, steps, warmup):
    import torch
    torch.set_num_threads(threads)
    mg = load_goldens()
    m = mg.build_model(model)
    cfg0 = mg.CONFIGS['%s_%s' % (opt, mode)]
    cfg, optim, loss_fn, params, _, _ = mg.setup_training(m, cfg0)
    x, y = mg.make_input(model, batch * 4, seed=1)
    xs = [torch.from_numpy(x[i * batch:(i + 1) * batch]) for i in range(4)]
    ys = [torch.from_numpy(y[i * batch:(i + 1) * batch]) for i in range(4)]
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        mg.train_step(m, optim, loss_fn, params, cfg, xs[i % 4], ys[i % 4])
        t1 = time.perf_counter()
        if i >= warmup:
            times.append((t1 - t0) * 1e3)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(model=model, mode=mode, optimizer=opt, threads=threads, batch=batch,
                step_ms=round(statistics.median(times), 4), peak_rss_kb=rss)


def export_all(models, d):
    mg = load_goldens()
    os.makedirs(d, exist_ok=True)
    for name in models:
        m = mg.build_model(name)
        path = os.path.join(d, name + '.onnx')
        mg.export_onnx(name, m, BENCH_BATCH[name], path)
        print('wrote %s (batch %d)' % (path, BENCH_BATCH[name]), file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--steps', type=int, default=50)
    ap.add_argument('--warmup', type=int, default=10)
    ap.add_argument('--threads', default='1,2')
    ap.add_argument('--models', default='mlp,cnn,mobilenet,transformer')
    ap.add_argument('--modes', default='full,frozen')
    ap.add_argument('--optimizers', default='sgd,adamw')
    ap.add_argument('--batch', type=int, default=0, help='override the benchmark batch')
    ap.add_argument('--export', metavar='DIR')
    ap.add_argument('--export-only', action='store_true')
    ap.add_argument('--export-in-process', metavar='DIR', help=argparse.SUPPRESS)
    ap.add_argument('--case', nargs=5, metavar=('MODEL', 'MODE', 'OPT', 'THREADS', 'BATCH'),
                    help=argparse.SUPPRESS)
    a = ap.parse_args()

    ld = os.environ.get('LD_LIBRARY_PATH', '')
    if not ld.startswith(OPENBLAS):
        env = dict(os.environ, LD_LIBRARY_PATH=OPENBLAS + (':' + ld if ld else ''))
        os.execve(sys.executable, [sys.executable] + sys.argv, env)

    if a.case:
        model, mode, opt, threads, batch = a.case
        r = run_case(model, mode, opt, int(threads), int(batch), a.steps, a.warmup)
        print(json.dumps(r), flush=True)
        return

    models = a.models.split(',')
    if a.export_in_process:
        export_all(models, a.export_in_process)
        return
    # This process never imports torch: the children fork from a small
    # process, and Linux carries the parent's peak RSS into a forked child's
    # ru_maxrss across exec.
    if a.export:
        subprocess.run([sys.executable, os.path.abspath(__file__), '--models', a.models,
                        '--export-in-process', a.export], check=True)
    if a.export_only:
        return
    for model in models:
        batch = a.batch or BENCH_BATCH[model]
        for mode in a.modes.split(','):
            for opt in a.optimizers.split(','):
                for threads in a.threads.split(','):
                    cmd = [sys.executable, os.path.abspath(__file__), '--steps', str(a.steps),
                           '--warmup', str(a.warmup),
                           '--case', model, mode, opt, threads, str(batch)]
                    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True)
                    if p.returncode != 0:
                        sys.stderr.write(p.stderr)
                        sys.exit('torch_train: case %s failed' % ' '.join(cmd[-5:]))
                    sys.stdout.write(p.stdout.strip().splitlines()[-1] + '\n')
                    sys.stdout.flush()


if __name__ == '__main__':
    main()
