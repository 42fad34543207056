#!/usr/bin/python3
"""Makes tests/data/golden/unfreeze/: PyTorch references for progressive
unfreezing (`graft train --unfreeze-every 1 --unfreeze-groups 3`) on the
golden CNN (tests/data/golden/cnn: model, initial weights, data).

The groups are written out by hand from graft's documented rule (README,
"Progressive unfreezing"): the CNN's layers in depth order are conv1+bn1,
res_conv1+res_bn1, res_conv2+res_bn2, conv2+bn2, fc; layer j of 5 goes to
group floor(j*3/5), so the groups are {conv1, res_conv1}, {res_conv2,
conv2}, {fc} (each conv with its BatchNorm).

Each epoch trains the 20 batches of x.npy in order (batch 8, no shuffle)
with the parameters of the active groups requires_grad (top-down: fc first,
then one more group per epoch; bottom-up: the reverse), a BatchNorm whose
parameters are all frozen in eval mode (graft's rule), one optimizer over
every parameter from the start: PyTorch skips parameters without a gradient,
so a newly unfrozen one starts with fresh state (momentum buffer = its first
gradient, Adam's step count from 1).

Needs /usr/bin/python3 with Debian's python3-torch (1.13) and python3-numpy;
not needed to build or test graft (the output is committed).

    /usr/bin/python3 scripts/make-unfreeze-goldens.py [OUTDIR]
"""
import importlib.util
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location('goldens', os.path.join(HERE, 'make-goldens.py'))
goldens = importlib.util.module_from_spec(spec)
spec.loader.exec_module(goldens)

CNN_DIR = os.path.join(HERE, '..', 'tests', 'data', 'golden', 'cnn')
B, EPOCHS = 8, 3
GROUPS = [['conv1', 'bn1', 'res_conv1', 'res_bn1'],
          ['res_conv2', 'res_bn2', 'conv2', 'bn2'],
          ['fc']]
CONFIGS = {
    'sgd_top_down': dict(optimizer='sgd', lr=0.05, momentum=0.9, weight_decay=1e-4,
                         order='top-down'),
    'adamw_top_down': dict(optimizer='adamw', lr=1e-3, weight_decay=0.01, order='top-down'),
    'adamw_bottom_up': dict(optimizer='adamw', lr=1e-3, weight_decay=0.01, order='bottom-up'),
}


def active_groups(order, epoch):
    n = min(len(GROUPS), 1 + epoch)
    idx = range(len(GROUPS) - n, len(GROUPS)) if order == 'top-down' else range(n)
    return [GROUPS[g] for g in idx]


def set_stage(model, order, epoch):
    """requires_grad for the active groups' modules; frozen BN in eval."""
    active = {m for g in active_groups(order, epoch) for m in g}
    model.train()
    for name, mod in model.named_children():
        for p in mod.parameters():
            p.requires_grad_(name in active)
        if isinstance(mod, nn.BatchNorm2d) and name not in active:
            mod.eval()
    return sorted(active)


def run(cfg, x, y):
    torch.manual_seed(0)
    model = goldens.build_model('cnn')
    sd = {n: torch.from_numpy(np.load(os.path.join(CNN_DIR, 'init', n + '.npy')))
          for n in goldens.onnx_tensor_names(model)}
    model.load_state_dict(sd, strict=False)
    params = list(model.parameters())
    if cfg['optimizer'] == 'sgd':
        opt = torch.optim.SGD(params, lr=cfg['lr'], momentum=cfg['momentum'],
                              weight_decay=cfg['weight_decay'])
    else:
        opt = torch.optim.AdamW(params, lr=cfg['lr'], weight_decay=cfg['weight_decay'])
    loss_fn = nn.CrossEntropyLoss()
    losses, stages = [], []
    steps = len(x) // B
    for epoch in range(EPOCHS):
        stages.append(set_stage(model, cfg['order'], epoch))
        for k in range(steps):
            xb = torch.from_numpy(x[k * B:(k + 1) * B])
            yb = torch.from_numpy(y[k * B:(k + 1) * B])
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return model, opt, losses, stages


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, '..', 'tests', 'data',
                                                             'golden', 'unfreeze')
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    x, y = np.load(os.path.join(CNN_DIR, 'x.npy')), np.load(os.path.join(CNN_DIR, 'y.npy'))
    for cname, cfg in CONFIGS.items():
        model, opt, losses, stages = run(cfg, x, y)
        d = os.path.join(out, cname)
        goldens.save_npy(os.path.join(d, 'losses.npy'), np.array(losses, dtype=np.float32))
        names = goldens.onnx_tensor_names(model)
        for sn, t in model.state_dict().items():
            if sn in names:
                goldens.save_npy(os.path.join(d, 'final', names[sn] + '.npy'), t.numpy())
        keys = {'momentum_buffer': 'momentum', 'exp_avg': 'm', 'exp_avg_sq': 'v'}
        for pn, p in model.named_parameters():
            for k, v in opt.state.get(p, {}).items():
                if k in keys:
                    goldens.save_npy(os.path.join(d, 'optimizer', '%s.%s.npy' % (pn, keys[k])),
                                     v.numpy())
        c = dict(cfg, model='cnn', batch=B, epochs=EPOCHS, every=1, groups=GROUPS,
                 trainable_modules_per_epoch=stages, shuffle=False, threads=1)
        with open(os.path.join(d, 'config.json'), 'w') as f:
            json.dump(c, f, indent=1)
            f.write('\n')
        print('%s: loss %.5f -> %.5f' % (cname, losses[0], losses[-1]))


if __name__ == '__main__':
    main()
