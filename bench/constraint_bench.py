"""The similarity constraint against its arithmetic floor, on one device, all in one run.

(1) FLOPs counted from the layer shapes, for --bs images of a VGG-11 (--width) grown from half its width:
    training step = 3 x forward (backward ~2x forward) of the convs (2*out*in/groups*kh*kw*H_out*W_out
    per image) and the linear layers (2*out*in per image); batch norm, ReLU, pooling, loss and optimiser
    step are not counted. Constraint floor per growing layer (n neurons of d inputs, k of them new):
      pairs='all': the two Gram products, forward U U^T and backward (G + G^T) U: 4 n^2 d;
      pairs='new': forward U_new U^T (2 k n d), backward Q_new U for the new rows (2 k n d) and
                   Q_new,old^T U_new for the old rows (2 k (n-k) d): (6 k n - 2 k^2) d.
(2) Kernels: similarity_loss (and, as 'sc', SimilarityConstraint on the one layer) forward+backward against a bare Gram product W @ W.T forward+backward by
    autograd (the reference the goal is stated against: at most 1.2x), and against the floor kernel
    (W @ W.T, then G @ W, no autograd), for a 512 x 4608 weight and for each layer shape of the network.
(3) Training steps (SGD with momentum on one random batch): without the constraint, with it on every
    batch for pairs='all' and pairs='new' (through ConstrainSimilarity.value, as its after_loss adds it: one
    SimilarityConstraint call for all layers: on a GPU a CUDA graph of the layers zero-padded into batches), on a
    GPU the same without the graph and the graph without the batches,
    per layer (similarity_loss on each layer, as before SimilarityConstraint), the constraint alone
    (forward+backward into the weights), and its floor kernels alone (`floor_products` on each layer's weights: the
    same Gram products, no autograd). Steps alternate between the variants in a shuffled order each round; the medians
    give the overhead, set beside the FLOP share.
    Goal (METHOD.md section 4): the constraint alone at most 1.5x its floor kernels' time, pairs='all' and pairs='new',
    each ratio the median over the rounds of the two measured in the same round.
(4) Host work per call: what one call of the constraint costs the host, its kernels made nearly free (a VGG-11 of
    width 4, the CUDA graph's replay stood in by one that does nothing): the time it adds to a stand-in loss's
    forward and backward, against the least an autograd function with stored gradients for the same weights costs
    ('floor'). On a GPU, where the training step of a small network waits for its kernel launches, this time adds
    to the step. (On a CPU the constraint computes layer by layer, its default there; a GPU's batched default adds
    one comparison of the batch plan's key per call.) Also the operations of one call, batched as on a GPU (each a kernel there): those in the forward,
    which the CUDA graph holds and replays in one launch, and those of the backward, launched one by one.
(2) and (3) also run the plain formula (`gdnn_nb.constraint.reference_loss`: normalise, every product, the
abs/relu/mask chain, autograd's backward), interleaved with the library's, so that the two are compared
under the same load; --no-plain leaves it out.

    .venv/bin/python bench/constraint_bench.py [--quick] [--device cpu] [--threads 1] [--clock cpu] [--rounds 12] [--only kernels|steps|host]
"""
import argparse, random, statistics, time, warnings
from types import SimpleNamespace
import torch, torch.nn as nn, torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated')
from gdnn_nb.callback import ConstrainSimilarity
from gdnn_nb.grow import grow_model, growable_groups
from gdnn_nb.models import vgg
from gdnn_nb.similarity import neuron_weights
from gdnn_nb.constraint import SimilarityConstraint, similarity_loss, reference_loss


_scs = {}
def sc_loss(w, new=None, pairs='new'):
    "One layer through SimilarityConstraint (what the callback calls; a CUDA graph on a GPU), with similarity_loss's arguments"
    sc = _scs.setdefault(pairs, SimilarityConstraint(pairs))
    return sc([w], None if pairs == 'all' else [new])

def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize()

CLOCK = time.perf_counter

def interleaved(cases, rounds, device, inner=1, warmup=1, raw=False):
    "Median seconds per call of each case in `cases` (name -> fn), calls alternating in a shuffled order each round"
    t = {k: [] for k in cases}
    clock = CLOCK
    names = list(cases)
    for r in range(warmup + rounds):
        random.shuffle(names)
        for k in names:
            sync(device); t0 = clock()
            for _ in range(inner): cases[k]()
            sync(device)
            if r >= warmup: t[k].append((clock() - t0) / inner)
    return t if raw else {k: statistics.median(v) for k, v in t.items()}

def step_flops(model, bs, device):
    "Training-step FLOPs of the convs and linear layers of `model` for `bs` 32x32 images: 3 x forward"
    fl, hooks = [0], []
    def conv(m, i, o): fl[0] += 2 * m.out_channels * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1] * o.shape[-2] * o.shape[-1]
    def lin(m, i, o): fl[0] += 2 * m.out_features * m.in_features
    for m in model.modules():
        if isinstance(m, nn.Conv2d): hooks.append(m.register_forward_hook(conv))
        elif isinstance(m, nn.Linear): hooks.append(m.register_forward_hook(lin))
    model.eval()
    with torch.no_grad(): model(torch.zeros(1, 3, 32, 32, device=device))
    model.train()
    for h in hooks: h.remove()
    return 3 * fl[0] * bs

def floor_flops(n, d, k=None):
    "FLOPs of the constraint's floor for a layer of `n` neurons of `d` inputs: pairs='all' (k None) or k new"
    return 4 * n * n * d if k is None else (6 * k * n - 2 * k * k) * d

def floor_products(w, k=None):
    ("The products of the constraint's floor on rows `w` (`[n, d]`), without autograd: forward and backward "
     "Gram products for pairs='all' (k None), or for the last k rows new; `floor_flops(n, d, k)` FLOPs")
    with torch.no_grad():
        a = 0 if k is None else len(w) - k
        C = w[a:] @ w.T
        g = torch.empty_like(w)
        torch.mm(C, w, out=g[a:])
        if a: torch.mm(C[:, :a].T, w[a:], out=g[:a])
    return g

def grown_vgg(width, device):
    "VGG-11 built at half `width` and grown (random strategy) to `width`: every producer has half its neurons new"
    torch.manual_seed(0)
    m = vgg(11, width // 2)
    grow_model(m, 1.0, 'random')
    return m.to(device)

def callback_on(model, pairs):
    "ConstrainSimilarity(pairs=...) on `model`, without a Learner: enough for its `value` and `layers`"
    cb = ConstrainSimilarity(pairs=pairs)
    cb.learn = SimpleNamespace(model=model)
    return cb

def kernels(a, device, model):
    print(f"\n(2) kernels: median ms of forward+backward, {a.kernel_rounds} interleaved rounds; "
          f"ratios to the bare Gram product (autograd) and to the floor kernel")
    shapes = [(512, 4608)] + [tuple(neuron_weights(p).shape) for p in callback_on(model, 'all').layers()]
    impls = {'': similarity_loss, ' sc': sc_loss} | ({' plain': reference_loss} if a.plain else {})
    cols = ['bare', 'floor'] + [f"{c}{i}" for i in impls for c in ('all', 'new')]
    print(f"    {'n x d':>11s} " + ' '.join(f"{c:>10s}" for c in cols) + "   " +
          ' '.join(f"{c + '/' + r:>15s}" for i in impls for c, r in ((f'all{i}', 'bare'), (f'all{i}', 'floor'), (f'new{i}', 'bare'))))
    tot = {c: 0. for c in cols}
    for i, (n, d) in enumerate(shapes):
        W = (torch.randn(n, d, device=device) * 0.01).requires_grad_()
        k = n // 2
        def bare(): W.grad = None; (W @ W.T).sum().backward()
        def floor():
            with torch.no_grad(): G = W @ W.T; G @ W
        def loss(f, pairs):
            def run(): W.grad = None; f(W, new=k, pairs=pairs).backward()
            return run
        cases = dict(bare=bare, floor=floor) | {f"{c}{nm}": loss(f, c) for nm, f in impls.items() for c in ('all', 'new')}
        inner = min(50, max(1, int(5e7 / (6 * n * n * d))))
        r = interleaved(cases, a.kernel_rounds, device, inner=inner)
        if i == 0: ref = r
        else:
            for c in tot: tot[c] += r[c]
        print(kernel_row(f"{n} x {d}" + (" (ref.)" if i == 0 else ""), r, cols, impls))
    print(kernel_row('VGG total', tot, cols, impls))
    print(f"    goal: similarity_loss('all') fwd+bwd at most 1.2x a bare Gram fwd+bwd: 512 x 4608 {ref['all']/ref['bare']:.2f}x, "
          f"VGG layers {tot['all']/tot['bare']:.2f}x; through SimilarityConstraint ('all sc'): "
          f"{ref['all sc']/ref['bare']:.2f}x and {tot['all sc']/tot['bare']:.2f}x")
    return tot

def kernel_row(label, r, cols, impls):
    return (f"    {label:>11s} " + ' '.join(f"{r[c]*1e3:10.3f}" for c in cols) + "   " +
            ' '.join(f"{r[c]/r[b]:15.2f}" for i in impls for c, b in ((f'all{i}', 'bare'), (f'all{i}', 'floor'), (f'new{i}', 'bare'))))

def call_on(sc, ps):
    "SimilarityConstraint `sc` on producers `ps` as ConstrainSimilarity calls it: with their `grown_mask` for 'new'"
    return sc(ps, None if sc.pairs == 'all' else [_grown(p) for p in ps])

def per_layer_constraint(ps, pairs, f=similarity_loss, margin=0.0):
    ("The constraint as GrowthCallback computed it before `SimilarityConstraint`: `f` (similarity_loss or the plain "
     "formula) on each producer in `ps` with selected pairs, then the mean; None without any")
    terms = [f(p, pairs='all', margin=margin) if pairs == 'all' else f(p, new=_grown(p), margin=margin)
             for p in ps if pairs == 'all' or _grown(p) is not None]
    return torch.stack(terms).mean() if terms else None

def _grown(p):
    "`p`'s grown-neuron mask, or None when it has no new neuron"
    m = getattr(p, 'grown_mask', None)
    return m if m is not None and bool(m.any()) else None

def floor_kernels(model, pairs):
    "The constraint's floor on `model`'s producers as a function of nothing: `floor_products` on each layer's weights"
    ws = [(neuron_weights(p).detach(), None if pairs == 'all' else int(m.sum()))
          for p in callback_on(model, pairs).layers() if pairs == 'all' or (m := _grown(p)) is not None]
    return lambda: [floor_products(w, k) for w, k in ws]

def per_layer(model, pairs, f):
    "`per_layer_constraint` on the producers of `model`, as a function of nothing"
    ps = callback_on(model, pairs).layers()
    return lambda: per_layer_constraint(ps, pairs, f)

def steps(a, device, model, flops, fl_all, fl_new, ktot):
    print(f"\n(3) training steps (batch {a.bs}): median ms per step, {a.rounds} interleaved rounds of {a.inner} step(s) per variant")
    print("    the library: ConstrainSimilarity.value, one SimilarityConstraint call"
          + (" replaying a CUDA graph, of the layers zero-padded into batches for 'all' and one by one for 'new' ('no graph': "
             "the same without the graph; 'batched' and 'unbatched': the graph of either kind)" if device.type == 'cuda' else '') + "; 'per layer': similarity_loss on each layer")
    torch.manual_seed(0)
    x, y = torch.randn(a.bs, 3, 32, 32, device=device), torch.randint(0, 10, (a.bs,), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    cons = {p: callback_on(model, p).value for p in ('all', 'new')}
    cons |= {f'{p} per layer': per_layer(model, p, similarity_loss) for p in ('all', 'new')}
    variants = (('no graph', dict(graph=False)), ('batched', dict(batched=True)), ('unbatched', dict(batched=False))) if device.type == 'cuda' else (('batched', dict(batched=True)),)
    for p in ('all', 'new'):
        ps = callback_on(model, p).layers()
        for name, kw in variants:
            cons[f'{p} {name}'] = (lambda sc, ps: lambda: call_on(sc, ps))(SimilarityConstraint(p, **kw), ps)
    if a.plain: cons |= {f'{p} plain': per_layer(model, p, reference_loss) for p in ('all', 'new')}
    def step(c=None):
        loss = F.cross_entropy(model(x), y)
        if c is not None: loss = loss + 0.1 * cons[c]()
        opt.zero_grad(); loss.backward(); opt.step()
    def only(c): opt.zero_grad(); (0.1 * cons[c]()).backward()
    label = lambda c: f"pairs='{c}'" if c in ('all', 'new') else f"'{c.split()[0]}' {' '.join(c.split()[1:])}"
    cases = {'without': step} | {label(c): (lambda c: lambda: step(c))(c) for c in cons}
    cases |= {f"'{p}' alone": (lambda p: lambda: only(p))(p) for p in ('all', 'new')}
    cases |= {f"'{p}' floor": floor_kernels(model, p) for p in ('all', 'new')}
    raw = interleaved(cases, a.rounds, device, inner=a.inner, raw=True)
    r = {k: statistics.median(v) for k, v in raw.items()}
    # overhead: median over rounds of each round's time over that round's step without the constraint
    alone = lambda k: k.endswith(('alone', 'floor'))
    ovs = {k: statistics.median(x / b - (not alone(k)) for x, b in zip(v, raw['without'])) for k, v in raw.items()}
    base = r['without']
    print("    overhead: median over the rounds of (time / time without in the same round) - 1; 'alone' and 'floor': time / time without")
    print("    FLOP share: the floor's FLOPs over the step's; the last column, the overhead over that share")
    print(f"    {'variant':16s} {'ms/step':>8s} {'overhead':>9s} {'FLOP share':>11s} {'/ FLOP share':>15s}")
    for k, v in r.items():
        fl = fl_all if 'all' in k else fl_new if 'new' in k else None
        tail = f" {ovs[k]:+9.1%} {fl/flops:11.1%} {ovs[k]/(fl/flops):15.2f}" if fl is not None else ''
        print(f"    {k:16s} {v*1e3:8.1f}{tail}")
    vs = {p: statistics.median(x / f for x, f in zip(raw[f"'{p}' alone"], raw[f"'{p}' floor"])) for p in ('all', 'new')}
    print(f"    goal: the constraint alone at most 1.5x its floor kernels' time (median of the ratio in each round): "
          + ', '.join(f"pairs='{p}' {v:.2f}x ({'met' if v <= 1.5 else 'NOT met'})" for p, v in vs.items()))
    if ktot: print(f"    for scale: the VGG layers' bare-Gram kernels of (2) take {ktot['bare']/base:.1%} of a step, "
          f"the floor kernels {ktot['floor']/base:.1%}")

class _NoReplay:
    "Stands in for a captured CUDA graph, with a replay that does nothing: what is left of a call is the host's work"
    def __init__(self, run): self.out = run()
    def replay(self): pass

class _Stored(torch.autograd.Function):
    "A loss with stored gradients for its weights: the least host work a loss over several weights can cost"
    @staticmethod
    def forward(ctx, loss, grads, *ws):
        ctx.grads = grads
        return loss.clone()
    @staticmethod
    def backward(ctx, grad): return (None, None, *ctx.grads)

class _Ops(TorchDispatchMode):
    "Counts the operations that do work (not views, not allocations): a kernel each on a GPU"
    SKIP = {'empty.memory_format', 'empty_strided.default', 'detach.default', 'lift_fresh.default'}
    def __enter__(self):
        self.n = 0
        return super().__enter__()
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view and func.__name__ not in self.SKIP: self.n += 1
        return func(*args, **(kwargs or {}))

def op_counts(model, pairs):
    "Operations in a SimilarityConstraint call over `model`'s producers, batched as on a GPU: in the forward (what a CUDA graph holds) and in the backward"
    ps = callback_on(model, pairs).layers()
    sc = SimilarityConstraint(pairs, graph=False, batched=True)
    call_on(sc, ps).backward()  # the batch plan, made once
    with _Ops() as f: loss = call_on(sc, ps)
    with _Ops() as b: loss.backward()
    return f.n, b.n

def host(a, device):
    import gdnn_nb.constraint as sim
    print(f"\n(4) host work per call: median us over {a.host_rounds} interleaved rounds of 50 calls, the CUDA graph's replay "
          "stood in by one that does nothing, on a VGG-11 grown 2 -> 4 (kernels of next to no work); "
          "what a call adds to a stand-in training loss's forward and backward (the sum of the weights). "
          "On a GPU this is the time the host spends per call, which adds to a step whose kernels wait for their launches")
    model = grown_vgg(4, device)
    cbs = {p: callback_on(model, p) for p in ('all', 'new')}
    ps = cbs['all'].layers()
    ws = [p.weight for p in ps]
    saved = sim._graphable, sim._warm_up, sim._capture
    sim._graphable, sim._warm_up = (lambda ws: True), (lambda run, device: None)
    sim._capture = lambda run, device: (lambda g: (g, g.out))(_NoReplay(run))
    try:
        stored = [torch.zeros((), device=device), [torch.zeros_like(w) for w in ws]]
        cons = {f"pairs='{p}'": cbs[p].value for p in cbs}
        cons |= {f"'{p}' per layer": per_layer(model, p, similarity_loss) for p in cbs}
        cons['floor'] = lambda: _Stored.apply(stored[0], stored[1], *ws)
        def call(c=None):
            loss = sum(w.sum() for w in ws)
            if c is not None: loss = loss + 0.1 * cons[c]()
            loss.backward()
        cases = {'without': call} | {c: (lambda c: lambda: call(c))(c) for c in cons}
        raw = interleaved(cases, a.host_rounds, device, inner=50, raw=True)
    finally: sim._graphable, sim._warm_up, sim._capture = saved
    extra = {k: statistics.median(x - b for x, b in zip(v, raw['without'])) for k, v in raw.items() if k != 'without'}
    print(f"    {'variant':16s} {'us/call':>8s} {'/ floor':>8s}")
    print(f"    {'without':16s} {statistics.median(raw['without'])*1e6:8.0f}   (the stand-in loss alone)")
    for k, v in extra.items(): print(f"    {k:16s} {v*1e6:8.0f} {v/extra['floor']:8.2f}")
    for p in ('all', 'new'):
        f, b = op_counts(grown_vgg(a.width, device), p)
        print(f"    pairs='{p}', batched as on a GPU: {f} operations in the forward (what the CUDA graph holds), "
              f"{b} in a backward of the loss alone (launched on each call: the seed gradient, the constraint's own, "
              f"and {len(ps)} adds into the weights' gradients)")

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--threads', type=int, default=None, help='torch threads on the CPU (default: as torch starts)')
    p.add_argument('--width', type=int, default=32)
    p.add_argument('--bs', type=int, default=128)
    p.add_argument('--rounds', type=int, default=None, help='interleaved rounds of training steps (default: 12 on a CPU, 60 on a GPU, where steps take milliseconds)')
    p.add_argument('--inner', type=int, default=None, help='steps per variant in a round (default: 1 on a CPU, 10 on a GPU)')
    p.add_argument('--kernel-rounds', type=int, default=7)
    p.add_argument('--clock', choices=('wall', 'cpu'), default='wall',
                   help="'cpu': this process's CPU time, which a busy machine disturbs less (with --threads 1 on a CPU)")
    p.add_argument('--no-plain', dest='plain', action='store_false', help='leave out the plain formula')
    p.add_argument('--host-rounds', type=int, default=30)
    p.add_argument('--only', choices=('kernels', 'steps', 'host'), default=None, help='run only part (2), (3) or (4)')
    p.add_argument('--quick', action='store_true', help='fewer rounds: about a minute on a 2-core CPU')
    a = p.parse_args()
    gpu = a.device.startswith('cuda')
    a.rounds = a.rounds or (60 if gpu else 12)
    a.inner = a.inner or (10 if gpu else 1)
    if a.quick: a.rounds, a.kernel_rounds, a.host_rounds = 5, 3, 10
    if a.threads: torch.set_num_threads(a.threads)
    global CLOCK
    if a.clock == 'cpu':
        if a.device != 'cpu': raise SystemExit(f"--clock cpu times the CPU; with --device {a.device} use --clock wall")
        CLOCK = time.process_time
    device = torch.device(a.device)
    model = grown_vgg(a.width, device)
    prods = callback_on(model, 'all').layers()
    flops = step_flops(model, a.bs, device)
    print(f"VGG-11 width {a.width // 2} grown to {a.width}, batch {a.bs}, device {device} "
          f"({torch.cuda.get_device_name() if device.type == 'cuda' else f'{torch.get_num_threads()} threads'}), torch {torch.__version__}")
    print(f"\n(1) FLOPs: training step {flops/1e9:.2f} GFLOP (3 x forward of convs and linear layers)")
    print(f"    {'layer':12s} {'n':>4s} {'d':>5s} {'k new':>5s} {'floor all':>10s} {'floor new':>10s}")
    fl_all = fl_new = 0
    for g, pr in zip(growable_groups(model), prods):
        n, d = neuron_weights(pr).shape
        k = int(pr.grown_mask.sum())
        fa, fn = floor_flops(n, d), floor_flops(n, d, k)
        fl_all, fl_new = fl_all + fa, fl_new + fn
        print(f"    {g.producer:12s} {n:4d} {d:5d} {k:5d} {fa/1e6:8.1f} M {fn/1e6:8.1f} M")
    print(f"    constraint floor: pairs='all' {fl_all/1e9:.3f} GFLOP = {fl_all/flops:.1%} of the step, "
          f"pairs='new' {fl_new/1e9:.3f} GFLOP = {fl_new/flops:.1%}")
    ktot = kernels(a, device, model) if a.only in (None, 'kernels') else None
    if a.only in (None, 'steps'): steps(a, device, model, flops, fl_all, fl_new, ktot)
    if a.only in (None, 'host'): host(a, device)

if __name__ == '__main__':
    main()
