#!/usr/bin/python3
"""Makes tests/data/golden/: PyTorch reference training runs that graft's
training tests compare against.

Four small models (mlp, cnn, mobilenet, transformer), each exported to ONNX in
training mode (opset 17), with fixed random data and K=20 steps of several
optimizer configurations, plus single loss-function cases (tests/data/golden/
losses/) and LoRA runs on the MLP and the transformer (lora_mlp, lora_transformer). See tests/data/golden/README.md for the layout.

Needs /usr/bin/python3 with Debian's python3-torch (1.13), python3-onnx (1.12)
and python3-numpy; not needed to build or test graft (the output is committed).

    /usr/bin/python3 scripts/make-goldens.py [OUTDIR] [--lora-only | --adapters-only]
        (OUTDIR default tests/data/golden; --lora-only: lora_* only;
         --adapters-only: adapters/ only)

bench/torch_train.py imports the model definitions from this file (MODELS,
build_model, make_input, export_onnx)."""
import copy
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

K = 20            # training steps per golden run
OPSET = 17        # LayerNormalization needs 17


# ---------------------------------------------------------------- models
class MLP(nn.Module):
    head_name = 'fc3'

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 32)
        self.fc2 = nn.Linear(32, 32)
        self.fc3 = nn.Linear(32, 5)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = torch.tanh(self.fc2(x))
        return self.fc3(x)


class CNN(nn.Module):
    """ResNet-style: stem, one residual block, a stride-2 conv, max pool,
    global average pool, linear."""
    head_name = 'fc'

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.res_conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.res_bn1 = nn.BatchNorm2d(8)
        self.res_conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.res_bn2 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.pool = nn.MaxPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        r = F.relu(self.res_bn1(self.res_conv1(x)))
        r = self.res_bn2(self.res_conv2(r))
        x = F.relu(x + r)
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.pool(x)
        x = self.gap(x)
        x = torch.flatten(x, 1)
        return self.fc(x)


def relu6(x):
    # F.relu6 exports (torch 1.13) as Relu followed by Clip with Cast constants;
    # hardtanh(0, 6) is the same function and gradient and exports as one Clip(0, 6).
    return F.hardtanh(x, 0.0, 6.0)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hid = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.expand = nn.Conv2d(cin, hid, 1, bias=False)
        self.expand_bn = nn.BatchNorm2d(hid)
        self.dw = nn.Conv2d(hid, hid, 3, stride=stride, padding=1, groups=hid, bias=False)
        self.dw_bn = nn.BatchNorm2d(hid)
        self.project = nn.Conv2d(hid, cout, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        h = relu6(self.expand_bn(self.expand(x)))
        h = relu6(self.dw_bn(self.dw(h)))
        h = self.project_bn(self.project(h))
        return x + h if self.use_res else h


class MobileNet(nn.Module):
    """MobileNetV2-style: stride-2 stem, three inverted residual blocks
    (residual, stride 2, residual), 1x1 head conv, global average pool, linear."""
    head_name = 'fc'

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(8)
        self.blocks = nn.ModuleList([
            InvertedResidual(8, 8, 1, 2),     # residual
            InvertedResidual(8, 16, 2, 4),    # stride 2
            InvertedResidual(16, 16, 1, 2),   # residual
        ])
        self.last = nn.Conv2d(16, 32, 1, bias=False)
        self.last_bn = nn.BatchNorm2d(32)
        self.fc = nn.Linear(32, 4)

    def forward(self, x):
        x = relu6(self.stem_bn(self.stem(x)))
        for b in self.blocks:
            x = b(x)
        x = relu6(self.last_bn(self.last(x)))
        x = x.mean(dim=(2, 3))
        return self.fc(x)


class Transformer(nn.Module):
    """Token + learned positional embedding, one post-LN encoder layer written
    by hand (2 heads), mean over tokens, linear."""
    head_name = 'head'
    vocab, T, D, H, FF, C = 50, 8, 16, 2, 32, 3

    def __init__(self):
        super().__init__()
        D = self.D
        self.tok_emb = nn.Embedding(self.vocab, D)
        self.pos_emb = nn.Parameter(torch.randn(self.T, D) * 0.1)
        self.q = nn.Linear(D, D)
        self.k = nn.Linear(D, D)
        self.v = nn.Linear(D, D)
        self.out = nn.Linear(D, D)
        self.ln1 = nn.LayerNorm(D)
        self.ff1 = nn.Linear(D, self.FF)
        self.ff2 = nn.Linear(self.FF, D)
        self.ln2 = nn.LayerNorm(D)
        self.head = nn.Linear(D, self.C)

    def forward(self, tokens):
        # Python-int shapes with -1 for the batch: the export is batch-agnostic
        # (sizes read from tokens.shape trace as constants anyway).
        T, H, D = self.T, self.H, self.D
        hd = D // H
        x = self.tok_emb(tokens) + self.pos_emb
        q = self.q(x).reshape(-1, T, H, hd).transpose(1, 2)
        k = self.k(x).reshape(-1, T, H, hd).transpose(1, 2)
        v = self.v(x).reshape(-1, T, H, hd).transpose(1, 2)
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(hd), dim=-1)
        a = (att @ v).transpose(1, 2).reshape(-1, T, D)
        x = self.ln1(x + self.out(a))
        x = self.ln2(x + self.ff2(F.gelu(self.ff1(x))))
        return self.head(x.mean(dim=1))


# name -> (class, golden batch, input name, per-sample input shape, dtype,
#          number of classes, per-step relative loss tolerance)
MODELS = {
    'mlp': (MLP, 16, 'x', (20,), 'f32', 5, 1e-4),
    'cnn': (CNN, 8, 'x', (3, 16, 16), 'f32', 4, 1e-3),
    'mobilenet': (MobileNet, 8, 'x', (3, 16, 16), 'f32', 4, 1e-3),
    'transformer': (Transformer, 16, 'tokens', (8,), 'i64', 3, 1e-4),
}


def build_model(name, seed=0):
    """The model with its deterministic initial values. BatchNorm weight, bias
    and running statistics are randomised (not 1/0/0/1) so that tests of
    eval-mode BN are meaningful."""
    torch.manual_seed(seed)
    m = MODELS[name][0]()
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                n = mod.num_features
                mod.weight.copy_(0.5 + torch.rand(n, generator=g))
                mod.bias.copy_(0.1 * torch.randn(n, generator=g))
                mod.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                mod.running_var.copy_(0.5 + torch.rand(n, generator=g))
    return m


def make_input(name, rows, seed=0):
    """Fixed random inputs [rows, ...] and labels [rows] as numpy arrays."""
    _, _, _, shape, dtype, ncls, _ = MODELS[name]
    rng = np.random.RandomState(seed)
    if dtype == 'i64':
        x = rng.randint(0, Transformer.vocab, size=(rows,) + shape).astype(np.int64)
    else:
        x = rng.standard_normal((rows,) + shape).astype(np.float32)
    y = rng.randint(0, ncls, size=rows).astype(np.int64)
    return x, y


def export_onnx(name, model, batch, path):
    """Training-mode ONNX export (opset 17, no constant folding). The export
    runs the model in train mode and so updates BN running statistics: the
    state is restored afterwards and the file is checked to hold the
    pre-export values (patched if not)."""
    import onnx
    from onnx import numpy_helper
    _, _, iname, shape, dtype, _, _ = MODELS[name]
    x, _ = make_input(name, batch, seed=12345)
    sd = copy.deepcopy(model.state_dict())
    was_training = model.training
    torch.onnx.export(model, (torch.from_numpy(x),), path,
                      training=torch.onnx.TrainingMode.TRAINING,
                      do_constant_folding=False, opset_version=OPSET,
                      input_names=[iname], output_names=['logits'],
                      dynamic_axes=None)
    model.load_state_dict(sd)
    model.train(was_training)
    mp = onnx.load(path)
    patched = []
    for init in mp.graph.initializer:
        if init.name in sd:
            want = sd[init.name].detach().cpu().numpy()
            have = numpy_helper.to_array(init)
            if have.shape != want.shape or not np.array_equal(have, want):
                init.CopyFrom(numpy_helper.from_array(want.astype(have.dtype), init.name))
                patched.append(init.name)
    if patched:
        onnx.save(mp, path)
    onnx.checker.check_model(mp)
    return mp, patched


# ---------------------------------------------------------------- training
CONFIGS = {
    'sgd_full': dict(optimizer='sgd', lr=0.05, momentum=0.9, dampening=0.0,
                     nesterov=False, weight_decay=1e-4, frozen=False),
    'adamw_full': dict(optimizer='adamw', lr=1e-3, betas=[0.9, 0.999], eps=1e-8,
                       weight_decay=0.01, frozen=False),
    'sgd_frozen': dict(optimizer='sgd', lr=0.05, momentum=0.9, dampening=0.0,
                       nesterov=False, weight_decay=1e-4, frozen=True),
    'adamw_frozen': dict(optimizer='adamw', lr=1e-3, betas=[0.9, 0.999], eps=1e-8,
                         weight_decay=0.01, frozen=True),
}
MLP_EXTRA = {
    'sgd_nesterov': dict(optimizer='sgd', lr=0.05, momentum=0.9, dampening=0.0,
                         nesterov=True, weight_decay=1e-4, frozen=False),
    # The MLP's gradient norm is 0.40-0.70 over these 20 steps, so a max norm of
    # 1.0 would never clip; 0.5 clips on 13 of the 20 steps (both branches tested).
    'sgd_clip': dict(optimizer='sgd', lr=0.05, momentum=0.9, dampening=0.0,
                     nesterov=False, weight_decay=1e-4, frozen=False, clip_norm=0.5),
    'ce_smooth_weights': dict(optimizer='sgd', lr=0.05, momentum=0.9, dampening=0.0,
                              nesterov=False, weight_decay=1e-4, frozen=False,
                              label_smoothing=0.1,
                              class_weights=[1.0, 2.0, 0.5, 1.0, 1.5]),
}


def full_config(cfg):
    c = dict(optimizer=None, lr=None, momentum=0.0, dampening=0.0, nesterov=False,
             weight_decay=0.0, betas=None, eps=None, clip_norm=None,
             label_smoothing=0.0, class_weights=None, frozen=False)
    c.update(cfg)
    return c


def bn_eval_if_frozen(model):
    """graft's rule: a BN whose parameters are frozen runs in eval mode.
    Returns the names of those BNs."""
    bn_eval = []
    for n, mod in model.named_modules():
        if isinstance(mod, nn.BatchNorm2d) and not any(p.requires_grad for p in mod.parameters()):
            mod.eval()
            bn_eval.append(n)
    return bn_eval


def make_optimizer(params, cfg):
    """SGD or AdamW over params with the (full) config's settings."""
    if cfg['optimizer'] == 'sgd':
        return torch.optim.SGD(params, lr=cfg['lr'], momentum=cfg['momentum'],
                               dampening=cfg['dampening'], nesterov=cfg['nesterov'],
                               weight_decay=cfg['weight_decay'])
    return torch.optim.AdamW(params, lr=cfg['lr'], betas=tuple(cfg['betas']),
                             eps=cfg['eps'], weight_decay=cfg['weight_decay'])


def setup_training(model, cfg, extra_frozen=()):
    """Freezes (if asked, and the extra_frozen names), sets train/eval
    modes, builds loss and optimizer. graft's rule: a BN whose parameters
    are frozen runs in eval mode."""
    cfg = full_config(cfg)
    for n, p in model.named_parameters():
        p.requires_grad_((not cfg['frozen'] or n.startswith(model.head_name + '.')) and
                         n not in extra_frozen)
    model.train()
    bn_eval = bn_eval_if_frozen(model)
    params = [p for p in model.parameters() if p.requires_grad]
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    opt = make_optimizer(params, cfg)
    w = cfg['class_weights']
    loss_fn = nn.CrossEntropyLoss(weight=None if w is None else torch.tensor(w),
                                  label_smoothing=cfg['label_smoothing'])
    return cfg, opt, loss_fn, params, names, bn_eval


def train_step(model, opt, loss_fn, params, cfg, xb, yb, grad_max=None):
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(xb), yb)
    loss.backward()
    if grad_max is not None:
        for i, p in enumerate(params):
            grad_max[i] = max(grad_max[i], p.grad.abs().max().item())
    if cfg['clip_norm'] is not None:
        torch.nn.utils.clip_grad_norm_(params, cfg['clip_norm'])
    opt.step()
    return loss.item()


def train_steps(model, opt, loss_fn, params, cfg, x, y, B, cd):
    """K steps on consecutive batches of B rows; the losses (also written
    to cd/losses.npy)."""
    losses = []
    for k in range(K):
        xb = torch.from_numpy(x[k * B:(k + 1) * B])
        yb = torch.from_numpy(y[k * B:(k + 1) * B])
        losses.append(train_step(model, opt, loss_fn, params, cfg, xb, yb))
    save_npy(os.path.join(cd, 'losses.npy'), np.array(losses, dtype=np.float32))
    return losses


def save_npy(path, a):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, np.ascontiguousarray(a))


def onnx_tensor_names(model):
    """state_dict name -> ONNX initializer name (identity when the exporter
    kept the name; checked in make_model_dir)."""
    return {n: n for n, _ in model.state_dict().items() if not n.endswith('num_batches_tracked')}


def make_model_dir(name, out):
    import onnx
    cls, B, iname, shape, dtype, ncls, tol = MODELS[name]
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    model = build_model(name)
    init_sd = copy.deepcopy(model.state_dict())
    mp, patched = export_onnx(name, model, B, os.path.join(d, 'model.onnx'))
    inits = {i.name for i in mp.graph.initializer}
    names = onnx_tensor_names(model)
    missing = [n for n in names.values() if n not in inits]
    if missing:
        raise SystemExit('%s: not ONNX initializers: %s' % (name, missing))
    ops = sorted({n.op_type for n in mp.graph.node})

    x, y = make_input(name, K * B, seed=1)
    np.save(os.path.join(d, 'x.npy'), x)
    np.save(os.path.join(d, 'y.npy'), y)
    for sn, on in names.items():
        save_npy(os.path.join(d, 'init', on + '.npy'), init_sd[sn].numpy())

    summary = dict(model=name, input=iname, input_shape=[B] + list(shape),
                   input_dtype='int64' if dtype == 'i64' else 'float32',
                   output='logits', classes=ncls, batch=B, steps=K,
                   loss_rel_tol=tol, head=model.head_name, ops=ops,
                   onnx_names=names, other_initializers=sorted(inits - set(names.values())),
                   export_patched=patched, configs={})
    configs = dict(CONFIGS)
    if name == 'mlp':
        configs.update(MLP_EXTRA)
    for cname, cfg0 in configs.items():
        # Parameters whose gradient is zero up to rounding at every step (a
        # bias that a following batch-statistics BatchNorm or the softmax
        # over keys cancels): Adam turns that rounding noise into full
        # lr-sized steps, which no other implementation can reproduce, and
        # everything downstream (running statistics) inherits the noise.
        # The Adam goldens freeze them (config.json "frozen_zero_gradient").
        noise = []
        if cfg0['optimizer'] != 'sgd':
            model.load_state_dict(init_sd)
            cfg, opt, loss_fn, params, tnames, bn_eval = setup_training(model, cfg0)
            grad_max = [0.0] * len(params)
            for k in range(K):
                xb = torch.from_numpy(x[k * B:(k + 1) * B])
                yb = torch.from_numpy(y[k * B:(k + 1) * B])
                train_step(model, opt, loss_fn, params, cfg, xb, yb, grad_max)
            top = max(grad_max)
            noise = [n for n, g in zip(tnames, grad_max) if g < 1e-6 * top]
        model.load_state_dict(init_sd)
        cfg, opt, loss_fn, params, tnames, bn_eval = setup_training(model, cfg0, noise)
        cd = os.path.join(d, cname)
        losses = train_steps(model, opt, loss_fn, params, cfg, x, y, B, cd)
        for sn, t in model.state_dict().items():
            if sn in names:
                save_npy(os.path.join(cd, 'final', names[sn] + '.npy'), t.numpy())
        c = dict(cfg)
        c.update(model=name, loss='cross_entropy_mean', trainable=[names[n] for n in tnames],
                 bn_eval=bn_eval, batch=B, steps=K, threads=1, seed=0,
                 frozen_zero_gradient=[names[n] for n in noise])
        with open(os.path.join(cd, 'config.json'), 'w') as f:
            json.dump(c, f, indent=1)
            f.write('\n')
        summary['configs'][cname] = dict(first_loss=losses[0], last_loss=losses[-1])
        print('%s/%s: loss %.5f -> %.5f' % (name, cname, losses[0], losses[-1]))
    with open(os.path.join(d, 'model.json'), 'w') as f:
        json.dump(summary, f, indent=1)
        f.write('\n')
    return summary


# ---------------------------------------------------------------- LoRA
# LoRA in plain torch (no peft), the math of ARCHITECTURE.md "Adapter
# naming": y = base(x) + (alpha/r) * (x A^T) B^T, A [r, in], B [out, r],
# the base Linear frozen. Every Linear of the MLP and of the transformer
# gets one (rank 4, alpha 8); graft adds them with --lora '*.weight:rank=4,
# alpha=8' and loads these initial values through --init.
LORA_RANK, LORA_ALPHA = 4, 8.0
LORA_CONFIGS = {'sgd': CONFIGS['sgd_full'], 'adamw': CONFIGS['adamw_full']}


class LoRALinear(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        self.scale = alpha / r
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
        self.lora_B = nn.Parameter(torch.empty(base.out_features, r))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))   # as peft
        # B starts nonzero (peft: zero) so that the first step already
        # exercises the adapter's forward path and the gradient of A.
        nn.init.normal_(self.lora_B, std=0.05)

    def forward(self, x):
        return self.base(x) + (x @ self.lora_A.t()) @ self.lora_B.t() * self.scale


def add_lora(model):
    """Wraps every nn.Linear; returns {torch name of A/B: ONNX-side name}."""
    torch.manual_seed(100)
    names = {}
    for mname, mod in list(model.named_modules()):
        for cname, child in list(mod.named_children()):
            if isinstance(child, nn.Linear):
                setattr(mod, cname, LoRALinear(child, LORA_RANK, LORA_ALPHA))
                full = (mname + '.' if mname else '') + cname
                for t in ('lora_A', 'lora_B'):
                    names[full + '.' + t] = full + '.weight.' + t
    for n, p in model.named_parameters():
        p.requires_grad_(n in names)
    return names


def make_lora_dir(name, out):
    """tests/data/golden/lora_<name>: the base model's export and data, init/
    with the base weights and the adapters, and per config the losses and
    the adapters' final values."""
    cls, B, iname, shape, dtype, ncls, tol = MODELS[name]
    d = os.path.join(out, 'lora_' + name)
    os.makedirs(d, exist_ok=True)
    model = build_model(name)
    export_onnx(name, model, B, os.path.join(d, 'model.onnx'))
    base_sd = {n: t.numpy().copy() for n, t in model.state_dict().items()}
    names = add_lora(model)
    init_sd = copy.deepcopy(model.state_dict())
    x, y = make_input(name, K * B, seed=1)
    np.save(os.path.join(d, 'x.npy'), x)
    np.save(os.path.join(d, 'y.npy'), y)
    for n, t in base_sd.items():
        save_npy(os.path.join(d, 'init', n + '.npy'), t)
    for n, on in names.items():
        save_npy(os.path.join(d, 'init', on + '.npy'), init_sd[n].numpy())
    for cname, cfg0 in LORA_CONFIGS.items():
        model.load_state_dict(init_sd)
        model.train()
        cfg = full_config(cfg0)
        params = [p for n, p in model.named_parameters() if n in names]
        opt = make_optimizer(params, cfg)
        loss_fn = nn.CrossEntropyLoss()
        cd = os.path.join(d, cname)
        losses = train_steps(model, opt, loss_fn, params, cfg, x, y, B, cd)
        sd = model.state_dict()
        for n, on in names.items():
            save_npy(os.path.join(cd, 'final', on + '.npy'), sd[n].numpy())
        c = dict(cfg)
        c.update(model=name, loss='cross_entropy_mean', trainable=sorted(names.values()),
                 lora=dict(rank=LORA_RANK, alpha=LORA_ALPHA,
                           graft_option='*.weight:rank=%d,alpha=%g' % (LORA_RANK, LORA_ALPHA)),
                 batch=B, steps=K, threads=1, seed=0, frozen_zero_gradient=[])
        with open(os.path.join(cd, 'config.json'), 'w') as f:
            json.dump(c, f, indent=1)
            f.write('\n')
        print('lora_%s/%s: loss %.5f -> %.5f' % (name, cname, losses[0], losses[-1]))
# ---------------------------------------------------------------- adapters
# Bottleneck adapters and IA3 (passes/adapters.c) on the frozen mlp, cnn and
# transformer: PyTorch modules that compute what graft inserts, attached with
# forward hooks on the layers whose ONNX nodes graft names.
def graft_stem(name):
    """A tensor name as graft's file stem (runtime/checkpoint.c)."""
    import re
    return re.sub('[^A-Za-z0-9._-]', '_', name)


class Bottleneck(nn.Module):
    """y + up(relu(down(y))) over the feature axis: Linear on the last axis,
    1x1 convolutions on the channel axis; up starts at zero."""

    def __init__(self, c, d, conv_rank):
        super().__init__()
        make = {0: nn.Linear, 1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[conv_rank]
        self.down = make(c, d) if not conv_rank else make(c, d, 1)
        self.up = make(d, c) if not conv_rank else make(d, c, 1)
        self.linear = not conv_rank
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, y):
        return y + self.up(F.relu(self.down(y)))

    def graft_tensors(self, node):
        """graft's names and layouts: x·W weights ([C, D], [D, C]) for Linear."""
        t = {}
        for part in ('down', 'up'):
            w = getattr(self, part).weight.detach().numpy()
            t['%s.adapter.%s.weight' % (node, part)] = w.T if self.linear else w
            t['%s.adapter.%s.bias' % (node, part)] = getattr(self, part).bias.detach().numpy()
        return t


class IA3(nn.Module):
    """y * scale, scale [C] (last axis) or [C, 1, ..] (channel axis), ones."""

    def __init__(self, c, conv_rank):
        super().__init__()
        self.scale = nn.Parameter(torch.ones((c,) + (1,) * conv_rank))

    def forward(self, y):
        return y * self.scale

    def graft_tensors(self, node):
        return {node + '.ia3': self.scale.detach().numpy()}


# model: (bottlenecks [(module, ONNX node, dim or None for C/16)],
#         IA3 [(module, ONNX node)])
ADAPTER_SPECS = {
    'mlp': ([('fc1', '/fc1/Gemm', 8)], [('fc2', '/fc2/Gemm')]),
    'cnn': ([('conv1', '/conv1/Conv', 4), ('conv2', '/conv2/Conv', None)],
            [('res_conv2', '/res_conv2/Conv')]),
    'transformer': ([('ff2', '/ff2/Add', 4)], [('k', '/k/Add'), ('v', '/v/Add')]),
}
ADAPTER_CONFIGS = {
    'sgd': dict(optimizer='sgd', lr=0.05, momentum=0.9, dampening=0.0, nesterov=False,
                weight_decay=1e-4, train_head=False),
    'adamw_head': dict(optimizer='adamw', lr=1e-3, betas=[0.9, 0.999], eps=1e-8,
                       weight_decay=0.01, train_head=True),
}


def attach_adapters(model, name):
    """Adds the adapters of ADAPTER_SPECS[name] (seeded init) with forward
    hooks; returns {ONNX node: [adapter modules in graft's order]} (IA3
    first, as graft inserts them)."""
    bottlenecks, ia3s = ADAPTER_SPECS[name]
    x, _ = make_input(name, 2, seed=5)
    shapes = {}
    hooks = [getattr(model, m).register_forward_hook(
        lambda mod, inp, out, m=m: shapes.__setitem__(m, out.shape)) for m, _, _ in bottlenecks]
    hooks += [getattr(model, m).register_forward_hook(
        lambda mod, inp, out, m=m: shapes.__setitem__(m, out.shape)) for m, _ in ia3s]
    with torch.no_grad():
        model.eval()(torch.from_numpy(x))
    for h in hooks:
        h.remove()
    torch.manual_seed(100)
    chains = {}
    for m, node in ia3s:
        conv = isinstance(getattr(model, m), nn.Conv2d)
        c = shapes[m][1] if conv else shapes[m][-1]
        chains.setdefault((m, node), []).append(IA3(c, 2 if conv else 0))
    for m, node, d in bottlenecks:
        conv = isinstance(getattr(model, m), nn.Conv2d)
        c = shapes[m][1] if conv else shapes[m][-1]
        chains.setdefault((m, node), []).append(Bottleneck(c, d or max(1, c // 16),
                                                           2 if conv else 0))
    for (m, node), mods in chains.items():
        def hook(mod, inp, out, mods=mods):
            for a in mods:
                out = a(out)
            return out
        getattr(model, m).register_forward_hook(hook)
    return {node: mods for (m, node), mods in chains.items()}


def adapter_tensors(chains):
    t = {}
    for node, mods in chains.items():
        for a in mods:
            t.update(a.graft_tensors(node))
    return t


def make_adapter_case(name, cname, cfg, out):
    _, B, _, _, _, _, tol = MODELS[name]
    model = build_model(name)
    chains = attach_adapters(model, name)
    adapters = nn.ModuleList([a for mods in chains.values() for a in mods])
    head = model.head_name + '.'
    for n, p in model.named_parameters():
        p.requires_grad_(cfg['train_head'] and n.startswith(head))
    model.train()
    bn_eval = bn_eval_if_frozen(model)
    params = list(adapters.parameters()) + [p for p in model.parameters() if p.requires_grad]
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    d = os.path.join(out, 'adapters', '%s_%s' % (name, cname))
    for n, a in adapter_tensors(chains).items():
        save_npy(os.path.join(d, 'init', graft_stem(n) + '.npy'), a)
    opt = make_optimizer(params, cfg)
    loss_fn = nn.CrossEntropyLoss()
    x, y = make_input(name, K * B, seed=1)
    losses, grad_max = [], [0.0] * len(params)
    c = full_config(dict(optimizer=cfg['optimizer']))
    for k in range(K):
        xb = torch.from_numpy(x[k * B:(k + 1) * B])
        yb = torch.from_numpy(y[k * B:(k + 1) * B])
        losses.append(train_step(model, opt, loss_fn, params, c, xb, yb, grad_max))
    # Every trained tensor gets real gradients (no rounding noise for Adam).
    if min(grad_max) < 1e-6 * max(grad_max):
        raise SystemExit('%s/%s: a trained tensor has no gradient' % (name, cname))
    save_npy(os.path.join(d, 'losses.npy'), np.array(losses, dtype=np.float32))
    final = adapter_tensors(chains)
    sd = model.state_dict()
    final.update({n: sd[n].numpy() for n in trained})
    for n, a in final.items():
        save_npy(os.path.join(d, 'final', graft_stem(n) + '.npy'), a)
    bottlenecks, ia3s = ADAPTER_SPECS[name]
    meta = dict(cfg, model=name, batch=B, steps=K, threads=1, loss_rel_tol=tol,
                loss='cross_entropy_mean', bn_eval=bn_eval, trained_model_params=trained,
                adapter_after=['%s:dim=%d' % (nd, dm) if dm else nd for _, nd, dm in bottlenecks],
                ia3=[nd for _, nd in ia3s], train_only=[head + '*'] if cfg['train_head'] else [],
                tensors=sorted(final))
    with open(os.path.join(d, 'config.json'), 'w') as f:
        json.dump(meta, f, indent=1)
        f.write('\n')
    print('adapters %s/%s: loss %.5f -> %.5f' % (name, cname, losses[0], losses[-1]))


def make_adapters(out):
    for name in ADAPTER_SPECS:
        for cname, cfg in ADAPTER_CONFIGS.items():
            make_adapter_case(name, cname, cfg, out)


# ---------------------------------------------------------------- loss cases
def make_losses(out):
    d = os.path.join(out, 'losses')
    rng = np.random.RandomState(7)
    logits = (2 * rng.standard_normal((8, 5))).astype(np.float32)
    labels = rng.randint(0, 5, size=8).astype(np.int64)
    targets = rng.standard_normal((8, 5)).astype(np.float32)
    probs = rng.uniform(0, 1, size=(8, 5)).astype(np.float32)
    w = [1.0, 2.0, 0.5, 1.0, 1.5]
    cases = [
        ('ce_plain', 'cross_entropy', labels, dict(reduction='mean')),
        ('ce_weights', 'cross_entropy', labels, dict(reduction='mean', class_weights=w)),
        ('ce_smooth', 'cross_entropy', labels, dict(reduction='mean', label_smoothing=0.1)),
        ('ce_smooth_weights', 'cross_entropy', labels,
         dict(reduction='mean', label_smoothing=0.1, class_weights=w)),
        ('mse', 'mse', targets, dict(reduction='mean')),
        ('l1', 'l1', targets, dict(reduction='mean')),
        ('bce_with_logits', 'bce_with_logits', probs, dict(reduction='mean')),
    ]
    meta = []
    for cname, kind, tgt, opts in cases:
        lg = torch.tensor(logits, requires_grad=True)
        t = torch.from_numpy(tgt)
        if kind == 'cross_entropy':
            wt = opts.get('class_weights')
            loss = F.cross_entropy(lg, t, weight=None if wt is None else torch.tensor(wt),
                                   label_smoothing=opts.get('label_smoothing', 0.0))
        elif kind == 'mse':
            loss = F.mse_loss(lg, t)
        elif kind == 'l1':
            loss = F.l1_loss(lg, t)
        else:
            loss = F.binary_cross_entropy_with_logits(lg, t)
        loss.backward()
        cd = os.path.join(d, cname)
        save_npy(os.path.join(cd, 'logits.npy'), logits)
        save_npy(os.path.join(cd, 'target.npy'), tgt)
        save_npy(os.path.join(cd, 'loss.npy'), np.array(loss.item(), dtype=np.float32))
        save_npy(os.path.join(cd, 'grad.npy'), lg.grad.numpy().astype(np.float32))
        meta.append(dict(name=cname, loss=kind, torch=torch.__version__,
                         target_dtype=str(tgt.dtype), target_shape=list(tgt.shape),
                         value=loss.item(), **opts))
    note = ('Each case dir: logits.npy f32[8,5], target.npy (int64 class labels [8] for '
            'cross_entropy, f32[8,5] otherwise), loss.npy f32 scalar, grad.npy f32[8,5] '
            '(d loss / d logits). PyTorch semantics: cross_entropy mean with class weights '
            'divides by sum(w[y_i]); with label smoothing e over C classes the loss is '
            '(1-e)*nll + (e/C)*sum_i sum_c w_c*(-log p_ic) / D, where D = sum_i w[y_i] '
            '(weights) or N (no weights). BCEWithLogits targets are probabilities in [0,1].')
    with open(os.path.join(d, 'cases.json'), 'w') as f:
        json.dump(dict(note=note, cases=meta), f, indent=1)
        f.write('\n')


def main():
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    out = args[0] if args else 'tests/data/golden'
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(out, exist_ok=True)
    lora_only, adapters_only = '--lora-only' in sys.argv, '--adapters-only' in sys.argv
    if not adapters_only:
        for n in ('mlp', 'transformer'):
            make_lora_dir(n, out)
    if not lora_only:
        make_adapters(out)
    if lora_only or adapters_only:
        return
    sums = [make_model_dir(n, out) for n in MODELS]
    make_losses(out)
    for s in sums:
        print(s['model'], 'ops:', ' '.join(s['ops']))
        print(s['model'], 'initializers (other):', s['other_initializers'], 'patched:', s['export_patched'])


if __name__ == '__main__':
    main()
