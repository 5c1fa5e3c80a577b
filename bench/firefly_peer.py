"""Firefly as its authors wrote it (github.com/klightz/Firefly, `--method fireflyn`) next to gdnn_nb's 'firefly'.

Both grow VGG-11 with 16 channels in every conv layer from the same weights on the same batches, in the
official outer loop shortened: --rounds rounds of --epochs epochs of SGD (nesterov, lr 0.1, momentum 0.9,
weight decay 1e-4, batch 128, the lr divided by 10 after epochs epochs//2-1 and epochs//4*3-1 as its main.py
does, a new optimiser each round), growing after every round but the last by --grow-ratio of all conv
neurons (one budget over all layers, 70 candidates a layer). The first round is trained once, on gdnn_nb's
VGG, and its weights are copied into the official one (whose classifier is a 1x1 conv over a 1x1 map: the
Linear's weight reshaped); each later round trains both networks on the same augmented batches. Each growth
step hands both the same two epochs of batches (--cand-batches of each): the first trains the candidates, the
second scores them (the official code reshuffles for its scoring pass too). The official budget is
int(ratio * N) + 1 (it keeps every score <= the sorted scores' [int(ratio * N)]); gdnn_nb is given int(ratio * N).

Per seed and growth step, for each: splits and new neurons per layer and the widths after; the mean cosine
between a split's two children (row j, now w+v, and its copy w-v); the mean |cosine| of the new neurons'
incoming weights to the old neurons'; the eval-mode test loss right before and after; the seconds it took.
The test loss and accuracy after each round; a summary over seeds.

Where the two procedures differ, by design of the official code: it draws a new classifier bias when it widens the
classifier for its candidates (kept after growth), gives the last conv layer's new neurons zero outgoing weights
(their trained weights into the classifier are dropped), and spends one neuron more than its budget. Both average a
split's two children before the max-pool that follows the layer while the candidates train and are scored
(gdnn_nb's `halves='before_pool'`, its default). The two draw their candidates from different random streams, so
they choose different neurons on the same seed; what must agree is the statistics. (With average pooling, the bias
kept and the same candidate draws, the two chose the same 45 neurons and grew the same weights to 1e-4 in a check
outside this script.)

The official code runs unchanged: its model.py's Classifier (update, decay_lr, split('fireflyn'), set_lr,
create_optimizer). Its candidate phases build `torch.utils.data.DataLoader(dataset, batch_size=128, shuffle=True,
num_workers=2)`; during its split that constructor is replaced by one handing back the shared batches, which is
also how --cand-batches shortens its phases. Outside main.py (not imported) it never calls `.cuda()`, so it runs on
the CPU as it is. Its prints are swallowed.

    git clone https://github.com/klightz/Firefly /tmp/firefly_official
    OMP_NUM_THREADS=1 .venv/bin/python bench/firefly_peer.py --official /tmp/firefly_official [--quick]
        [--seeds 0 1 2] [--rounds 3] [--epochs 8] [--cand-batches N] [--out bench/results/firefly_peer_cpu.txt]
"""
import argparse, contextlib, io, os, platform, statistics, sys, time, warnings
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from unittest import mock
import torch, torch.nn.functional as F
warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated')
from gdnn_nb.data import cifar_dls, find_cifar_npz
from gdnn_nb.grow import growable_groups, grow_groups
from gdnn_nb.models import vgg

WIDTH, K = 16, 70  # channels of every conv layer; the official code's candidates a layer (SpModule.K)


def load_official(path):
    "The `model` module of the klightz/Firefly checkout at `path`, its `sp` package importable beside it"
    p = Path(path) if path else None
    if p is None or not (p/'model.py').is_file() or not (p/'sp'/'conv.py').is_file():
        sys.exit(f"firefly_peer: --official must name a checkout of github.com/klightz/Firefly "
                 f"(with model.py and sp/); got {path!r}")
    sys.path.insert(0, str(p.resolve()))
    import model
    return model


def official_vgg(ff, ratio):
    "The official Classifier at the VGG-11 layout, WIDTH channels a conv layer, on the CPU"
    cfg = SimpleNamespace(verbose=False, device='cpu', grow_ratio=ratio, dim_input=(3, 32, 32),
                          dim_hidden=WIDTH, dim_output=10, model='vgg11', method='fireflyn',
                          optimizer='SGD', momentum=0.9, weight_decay=1e-4, granularity=1)
    return ff.Classifier(cfg)


@torch.no_grad()
def copy_into_official(model, groups, off):
    "Give the official VGG `off` the weights and norm statistics of gdnn_nb's `model` (its `groups`)"
    for g, i in zip(groups, off.layers_to_split):
        off.net[i].module.weight.copy_(model.get_submodule(g.producer).weight)
        off.net[i].bn.load_state_dict(model.get_submodule(g.norm).state_dict())
    head = off.net[-1].module
    head.weight.copy_(model.classifier.weight.view(head.weight.shape))
    head.bias.copy_(model.classifier.bias)


def epoch(dls, n=None):
    "One epoch of augmented training batches (the first `n`) as plain tensors"
    return [(x.as_subclass(torch.Tensor), y.as_subclass(torch.Tensor)) for x, y in dls.train][:n]


class Passes:
    ("The candidate phases' batches for both: each pass over it, or call of it, is the next epoch; "
     "the official code takes it as its DataLoader, gdnn_nb as `batches(n)`")
    def __init__(self, epochs): self.epochs, self.i = epochs, 0
    def __len__(self): return len(self.epochs[0])
    def _next(self):
        self.i += 1
        return self.epochs[self.i - 1]
    def __iter__(self): return iter(self._next())
    def __call__(self, n=None): return self._next()[:n]


def lr_drops(e, epochs):
    "How many times main.py divides the lr by 10 after epoch `e` (from 1) of `epochs`"
    return (e == epochs // 2 - 1) + (e == epochs // 4 * 3 - 1)


def sgd(model):
    "The official Classifier's optimiser"
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True)


def train_epoch(model, opt, batches):
    "One epoch of gdnn_nb's `model` on `batches`, as the official Classifier.update does it"
    model.train()
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


@torch.no_grad()
def evaluate(net, test):
    "Eval-mode test loss and accuracy of `net`, which goes back to training mode"
    net.eval()
    loss = correct = n = 0
    for x, y in test:
        out = net(x)
        loss += F.cross_entropy(out, y, reduction='sum').item()
        correct += (out.argmax(1) == y).sum().item()
        n += len(y)
    net.train()
    return loss / n, correct / n


def conv_weights(ws): return [w.detach().clone() for w in ws]  # snapshots, before or after a growth step


def split_cosines(before, after, splits):
    ("For one layer: the cosine between each split's children (parent row j, which changed, and its copy, "
     "appended in the order of j) and the |cosine| of each new row to each old row")
    n, cin = before.shape[:2]
    a = after[:n, :cin]
    # a row that did not split keeps its weights, or half of them on a split input channel
    parents = (~((a == before) | (a == before / 2)).flatten(1).all(1)).nonzero().flatten()
    assert len(parents) == splits, f"found {len(parents)} split parents, the growth reported {splits}"
    rows = after.flatten(1)
    child = F.cosine_similarity(rows[parents], rows[n:n + splits], dim=1)
    new = F.cosine_similarity(rows[n + splits:, None], rows[None, :n], dim=2).abs()
    return child.tolist(), new.flatten().tolist()


def grow_official(off, passes):
    "One official growth step: (splits, new) per layer, conv weights before and after"
    before = conv_weights(off.net[i].module.weight for i in off.layers_to_split)
    with mock.patch.object(torch.utils.data, 'DataLoader', lambda ds, **kw: ds), \
         contextlib.redirect_stdout(io.StringIO()):
        added = off.split('fireflyn', passes)
    off.set_lr(0.1)  # what main.py does after each growth step
    off.create_optimizer()
    return [added[i] for i in off.layers_to_split], before, \
           conv_weights(off.net[i].module.weight for i in off.layers_to_split)


def grow_gdnn(model, names, budget, passes, seed):
    "One gdnn_nb growth step spending `budget` neurons: (splits, new) per layer, conv weights before and after"
    before = conv_weights(model.get_submodule(nm).weight for nm in names)
    ks = [budget // len(names) + (i < budget % len(names)) for i in range(len(names))]  # only the sum counts
    recs = grow_groups(model, names, ks, 'firefly', generator=torch.Generator().manual_seed(seed),
                       batches=passes, loss_func=F.cross_entropy, candidates=K)
    return [(r.info['splits'], r.info['new']) for r in recs], before, \
           conv_weights(model.get_submodule(nm).weight for nm in names)


def growth_step(grow, net, test):
    "Run `grow()` on `net`: what it added, widths, cosines, loss before and after, seconds"
    loss0, _ = evaluate(net, test)
    t0 = time.perf_counter()
    added, before, after = grow()
    secs = time.perf_counter() - t0
    loss1, _ = evaluate(net, test)
    child, new = [], []
    for (s, _), b, a in zip(added, before, after):
        c, nc = split_cosines(b, a, s)
        child += c; new += nc
    return dict(added=added, widths=[len(a) for a in after], loss=(loss0, loss1), dloss=loss1 - loss0,
                child=statistics.fmean(child) if child else float('nan'),
                new=statistics.fmean(new) if new else float('nan'), secs=secs)


def report_growth(say, step, res):
    o, g = res
    say(f"  growth {step}: neurons added official {sum(map(sum, o['added']))}, gdnn_nb {sum(map(sum, g['added']))}")
    say(f"    {'layer':8s} {'official: split  new  width':>27s}   {'gdnn_nb: split  new  width':>26s}")
    rows = [(f"conv {i + 1}", *oa, ow, *ga, gw)
            for i, (oa, ow, ga, gw) in enumerate(zip(o['added'], o['widths'], g['added'], g['widths']))]
    for name, *v in rows + [('all', *map(sum, list(zip(*rows))[1:]))]:
        say(f"    {name:8s} {v[0]:21d} {v[1]:4d} {v[2]:6d}   {v[3]:20d} {v[4]:4d} {v[5]:6d}")
    say(f"    {'child cos, mean over splits':34s} {o['child']:8.4f}   {g['child']:26.4f}")
    say(f"    {'new-old |cos|, mean':34s} {o['new']:8.4f}   {g['new']:26.4f}")
    say(f"    {'test loss before -> after':34s} {o['loss'][0]:.4f} -> {o['loss'][1]:.4f} ({o['dloss']:+.4f})"
        f"   {g['loss'][0]:.4f} -> {g['loss'][1]:.4f} ({g['dloss']:+.4f})")
    say(f"    {'seconds':34s} {o['secs']:8.1f}   {g['secs']:26.1f}")


def run_seed(a, ff, seed, npz, say):
    "Both procedures from one seed: a list of growth steps, each (official, gdnn_nb), and the final accuracies"
    dls = cifar_dls(path=npz, bs=128, device='cpu', seed=seed, n_train=a.n_train)
    test = [(x.as_subclass(torch.Tensor), y.as_subclass(torch.Tensor)) for x, y in dls.valid]
    torch.manual_seed(seed)
    model = vgg(11, WIDTH, 10, uniform=True)
    groups = growable_groups(model)
    names = [g.producer for g in groups]
    off, steps, opt = None, [], sgd(model)
    say(f"seed {seed}: {len(dls.train)} batches of 128 an epoch, {sum(len(y) for _, y in test)} test images")
    for r in range(1, a.rounds + 1):
        for e in range(1, a.epochs + 1):
            batches = epoch(dls)
            train_epoch(model, opt, batches)
            if off is not None:
                for x, y in batches: off.update(x, y)
            for _ in range(lr_drops(e, a.epochs)):
                for pg in opt.param_groups: pg['lr'] *= 0.1
                if off is not None: off.decay_lr(0.1)
        if off is None:
            off = official_vgg(ff, a.grow_ratio)
            copy_into_official(model, groups, off)
        (ol, oa), (gl, ga) = evaluate(off, test), evaluate(model, test)
        say(f"  round {r}{' (trained once, shared)' if r == 1 else ''}: test loss / acc   "
            f"official {ol:.4f} / {oa:.2%}   gdnn_nb {gl:.4f} / {ga:.2%}")
        if r == a.rounds: return steps, (oa, ga)
        cand = [epoch(dls, a.cand_batches) for _ in range(2)]
        gseed = 1000 * seed + r
        torch.manual_seed(gseed)  # the official candidates draw from the global generator
        o = growth_step(lambda: grow_official(off, Passes(cand)), off, test)
        n = sum(model.get_submodule(nm).out_channels for nm in names)
        g = growth_step(lambda: grow_gdnn(model, names, int(a.grow_ratio * n), Passes(cand), gseed), model, test)
        steps.append((o, g))
        report_growth(say, r, (o, g))
        opt = sgd(model)


def summary(say, results):
    "Means (and spread) over seeds of each growth step's numbers and the final accuracy"
    def ms(xs, fmt):
        return format(statistics.fmean(xs), fmt) + (f" +- {statistics.stdev(xs):{fmt}}" if len(xs) > 1 else '')
    def row(label, pairs, fmt='.4f'):
        o, g = zip(*pairs)
        say(f"    {label:18s} official {ms(o, fmt):>18s}   gdnn_nb {ms(g, fmt):>18s}")
    say(f"\nsummary over {len(results)} seed(s): mean (+- sd)")
    for s in range(len(results[0][0])):
        say(f"  growth {s + 1}")
        steps = [st[s] for st, _ in results]
        for key, label in (('dloss', 'test loss change'), ('child', 'child cos'), ('new', 'new-old |cos|')):
            row(label, [(o[key], g[key]) for o, g in steps])
        for k, label in ((0, 'splits'), (1, 'new neurons')):
            row(label, [tuple(sum(x[k] for x in r['added']) for r in st) for st in steps], '.1f')
        row('seconds', [(o['secs'], g['secs']) for o, g in steps], '.1f')
    say('  after the last round')
    row('test acc %', [(100 * o, 100 * g) for _, (o, g) in results], '.2f')


def machine():
    "The CPU's model name and the number of cores"
    info = Path('/proc/cpuinfo')
    names = [l.split(':', 1)[1].strip() for l in info.read_text().splitlines()
             if l.startswith('model name')] if info.exists() else []
    return f"{names[0] if names else platform.processor()}, {os.cpu_count()} cores"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--official', metavar='PATH',
                   help='a checkout of github.com/klightz/Firefly (git clone it anywhere outside the project); required')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--rounds', type=int, default=3, help='training rounds; growth after each but the last')
    p.add_argument('--epochs', type=int, default=8, help='epochs a round')
    p.add_argument('--grow-ratio', type=float, default=0.35, help='share of all conv neurons added a growth step')
    p.add_argument('--n-train', type=int, default=None, help='training images (default: all of the subset)')
    p.add_argument('--cand-batches', type=int, default=None,
                   help='batches of each candidate phase, training and scoring (default: an epoch)')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--quick', action='store_true',
                   help='smoke test: seed 0, 2 rounds of 1 epoch, 1024 training images, candidate phases of 4 batches')
    p.add_argument('--out', help='default: bench/results/firefly_peer_cpu.txt (with --quick: firefly_peer_cpu_quick.txt)')
    a = p.parse_args()
    ff = load_official(a.official)
    if a.quick: a.seeds, a.rounds, a.epochs, a.n_train, a.cand_batches = [0], 2, 1, 1024, 4
    a.out = a.out or f"bench/results/firefly_peer_cpu{'_quick' if a.quick else ''}.txt"
    npz = find_cifar_npz()
    if npz is None: sys.exit("firefly_peer: no CIFAR-10 subset at ../shared/data/cifar10_subset.npz or $GDNN_CIFAR_NPZ")
    torch.set_num_threads(a.threads)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, 'w') as f:
        def say(line=''):
            print(line, flush=True)
            f.write(line + '\n'); f.flush()
        say(f"# bench/firefly_peer.py {' '.join(sys.argv[1:])}, {machine()}, {date.today()}")
        say(f"VGG-11 width {WIDTH} uniform, CIFAR-10 subset {npz}, {a.rounds} rounds of {a.epochs} epoch(s), "
            f"grow ratio {a.grow_ratio}, {K} candidates a layer, candidate phases of "
            f"{a.cand_batches or 'an epoch of'} batches, device cpu ({torch.get_num_threads()} threads), "
            f"torch {torch.__version__}")
        results = [run_seed(a, ff, s, npz, say) for s in a.seeds]
        summary(say, results)


if __name__ == '__main__':
    main()
