"""Overhead of GrowthCallback inside fastai's fit_one_cycle, on the CIFAR-10 subset, VGG-11, all in one run.

(a) constraint cost: a static width-32 network for --epochs-a epochs with GrowthCallback(at=[], pairs='all')
    (the constraint on every batch, no growth) against the same fit without the callback: training images
    per second of each, and the ratio; also the constraint computed layer by layer (similarity_loss on each,
    as before SimilarityConstraint). Runs alternate (without, with, per layer, ...) --repeats times.
(b) growth cost: a --epochs-b epoch run growing from width 16 to 32 in three steps: time inside growth
    events over the whole fit time.
(c) the learning side: that growing run's accuracy next to static width-16 and width-32 networks trained
    the same way, over --seeds seeds.
(d) the default settings' cost: a --epochs-d epoch run growing 16 -> 32 at epochs 1, 2 and 3 with GrowthCallback's
    defaults (pairs='new', sim_weight=0.1, on every batch after the first growth step) against the same run with
    sim_weight=0 (growth without the constraint), alternating --repeats times: the share of fit time the constraint adds.
    On a CPU also timed directly, inside the default runs: the constraint's calls and the backward of each loss they
    return (hooks on its autograd node), over the fit time; a few percent is below what the difference of two fits
    resolves on a busy machine. Beside it, on each of those batches, the floor's products alone (`floor_products`:
    the same matrix products on the same weights, nothing else) are timed too, and their time is taken out of the
    fit's: the least the constraint could cost at this machine's matrix-product speed.
(e) what the user pays for the method, at the default settings: --epochs-d epoch runs growing at epochs 1, 2 and 3
    with the defaults (`similarity` and its constraint) against the same growth with `random` and no constraint,
    alternating --repeats times, for two networks: VGG-11 growing 16 -> 32, and the paper preset's first rounds
    (`gdnn-compare --preset paper`: VGG-19 with 16 channels in every conv layer, +30% a step); in mixed precision
    (`to_fp16`) on a GPU, as the experiments lesson runs the preset there (--no-fp16: float32). Training images per
    second of each, their ratio, and the parts: candidate selection at the growth steps (their time) and the
    constraint per batch (its calls and backward, timed as in (d)).
Goals: (a) at most 10% on a CPU, 3% on a GPU; (b) under 1% of the fit; (d) at most 3% on a CPU; (e) on a GPU,
similarity with its constraint at most 1.10 times random growth's time per image.

    .venv/bin/python bench/callback_bench.py [--device cpu] [--repeats 2] [--seeds 1] [--only a|bc|d|e] [--epochs-d 5] [--sim-every 2]
"""
import argparse, statistics, time, warnings
import torch
warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated')
from fastai.vision.all import Learner, accuracy, CrossEntropyLossFlat, default_device
from gdnn_nb.callback import GrowthCallback, ConstrainSimilarity
from gdnn_nb.similarity import neuron_weights
from fastai.callback.core import Callback
from constraint_bench import floor_flops, floor_products, per_layer_constraint, step_flops  # beside this script
from gdnn_nb.data import cifar_dls, find_cifar_npz
from gdnn_nb.models import vgg, count_params
from gdnn_nb.train import build_model
from gdnn_nb.compare import PAPER_GROWTH


class PerLayerConstraint(ConstrainSimilarity):
    "The constraint as it was computed before SimilarityConstraint: similarity_loss layer by layer, then the mean"
    def value(self): return per_layer_constraint(self.layers(), self.sc.pairs, margin=self.sc.margin)


def with_constraint(cls, **kwargs):
    "GrowthCallback(**kwargs) whose constraint is a `cls` with the same settings"
    cb = GrowthCallback(**kwargs)
    c = cb.constrain
    cb.constrain = cls(c.weight, c.sc.pairs, c.sc.margin, c.every)
    return cb


class FloorShare(Callback):
    ("The similarity constraint's arithmetic floor over the training steps it ran in, as a share of those steps' "
     "FLOPs (both counted as in constraint_bench.py), recounted after each growth step")
    order = GrowthCallback.order + 2
    def before_train(self):  # not before_fit: learn.validate() sends that too
        if self.epoch == 0: self.floor, self.steps, self._n = 0, 0, None
    def after_batch(self):
        if not self.training: return
        g = self.learn.growth
        if len(g.history) != self._n:
            self._n, m = len(g.history), g.model
            self._stepfl = step_flops(m, self.learn.dls.bs, next(m.parameters()).device)
            self._floor = sum(floor_flops(*neuron_weights(p).shape, k) for p in g.producers()
                              if (k := _count(p)))
            self._on = g.constrain.weight > 0
        self.steps += self._stepfl
        if self._on and self.learn.train_iter % self.learn.growth.constrain.every == 0: self.floor += self._floor

class Timed(ConstrainSimilarity):
    ("ConstrainSimilarity that clocks itself: each call and the backward of what it returns (which computes the "
     "gradients, on a CPU), timed by hooks on that loss's node; on a CPU, where both run before they return. Left out: "
     "autograd's adds of its gradients into the task loss's, one weight-sized add per layer. On each call, the "
     "floor's products alone on the same weights are timed too ('floor_spent'), outside the call's time")
    spent = floor_spent = 0.
    def value(self):
        t0 = time.perf_counter()
        c = super().value()
        self.spent += time.perf_counter() - t0
        if c is not None and c.device.type == 'cpu':  # a GPU's would need a synchronisation
            t0 = time.perf_counter()
            # pairs='new', as part (d) and FloorShare take it
            for p in self.layers():
                if k := _count(p): floor_products(neuron_weights(p).detach().float(), k)
            self.floor_spent += time.perf_counter() - t0
        if c is not None and c.grad_fn is not None:
            start = []
            c.grad_fn.register_prehook(lambda go: start.append(time.perf_counter()))
            c.grad_fn.register_hook(lambda gi, go: setattr(self, 'spent', self.spent + time.perf_counter() - start.pop()))
        return c

def _count(p):
    "grown neurons of producer `p` (0 before growth)"
    m = getattr(p, 'grown_mask', None)
    return 0 if m is None else int(m.sum())


def run(dls, width, epochs, cbs, lr, seed, model='vgg11', fp16=False):
    torch.manual_seed(seed)
    learn = Learner(dls, build_model(model, width), loss_func=CrossEntropyLossFlat(), metrics=accuracy, cbs=cbs)
    if fp16: learn.to_fp16()
    with learn.no_bar(), learn.no_logging():
        t0 = time.perf_counter()
        learn.fit_one_cycle(epochs, lr)
        if dls.device.type == 'cuda': torch.cuda.synchronize()
        t = time.perf_counter() - t0
    with learn.no_bar(): acc = learn.validate()[1]
    return learn, t, acc


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', default=None)
    p.add_argument('--epochs-a', type=int, default=5)
    p.add_argument('--epochs-b', type=int, default=10)
    p.add_argument('--repeats', type=int, default=2)
    p.add_argument('--seeds', type=int, default=1)
    p.add_argument('--bs', type=int, default=128)
    p.add_argument('--lr', type=float, default=3e-3)
    p.add_argument('--epochs-d', type=int, default=5)
    p.add_argument('--sim-every', type=int, default=None, help="(d): GrowthCallback's sim_every (default: the library's)")
    p.add_argument('--fp16', action=argparse.BooleanOptionalAction, default=None,
                   help='(e): mixed precision (default: on a GPU; fastai\'s to_fp16 needs one)')
    p.add_argument('--only', choices=('a', 'bc', 'd', 'e'), default=None, help='run only part (a), only parts (b) and (c), only part (d) or only part (e)')
    a = p.parse_args()
    npz = find_cifar_npz()
    if npz is None: raise SystemExit("the CIFAR-10 subset is missing: put it at ../shared/data/cifar10_subset.npz or set GDNN_CIFAR_NPZ")
    device = torch.device(a.device) if a.device else default_device()
    dls = cifar_dls(path=npz, bs=a.bs, device=device)
    n = len(dls.train) * a.bs
    print(f"CIFAR-10 subset ({len(dls.train.x)} train / {len(dls.valid.x)} test images), VGG-11 unless a part names another, fit_one_cycle lr {a.lr}, bs {a.bs}, "
          f"device {device}{' ' + torch.cuda.get_device_name() if device.type == 'cuda' else f' ({torch.get_num_threads()} threads)'}")

    if a.only in (None, 'a'): part_a(a, dls, n)
    if a.only in (None, 'bc'): part_bc(a, dls)
    if a.only in (None, 'd'): part_d(a, dls)
    if a.only in (None, 'e'): part_e(a, dls)


def part_a(a, dls, n):
    print(f"\n(a) constraint cost: static width 32, {a.epochs_a} epochs, {a.repeats} alternating repeats")
    t = {'without': [], 'with': [], 'per layer': []}
    for r in range(a.repeats):
        for name, cbs in (('without', []), ('with', [GrowthCallback(at=[], pairs='all')]), ('per layer', [with_constraint(PerLayerConstraint, at=[], pairs='all')])):
            t[name].append(run(dls, 32, a.epochs_a, cbs, a.lr, r)[1])
    ips = {k: a.epochs_a * n / statistics.median(v) for k, v in t.items()}
    print(f"    without callback: {ips['without']:8.1f} images/s   (fit times {', '.join(f'{x:.1f}' for x in t['without'])} s)")
    print(f"    with constraint:  {ips['with']:8.1f} images/s   (fit times {', '.join(f'{x:.1f}' for x in t['with'])} s)")
    print(f"    per layer:        {ips['per layer']:8.1f} images/s   (fit times {', '.join(f'{x:.1f}' for x in t['per layer'])} s; similarity_loss on each layer, as before SimilarityConstraint)")
    print(f"    cost: {ips['without'] / ips['with'] - 1:+.1%} time per image, per layer {ips['without'] / ips['per layer'] - 1:+.1%} "
          f"(goal: at most 10% on a CPU, 3% on a GPU)")


def part_bc(a, dls):
    print(f"\n(b, c) {a.epochs_b} epochs: growing 16 -> 32 in three steps (epochs 1, 2, 3) vs static 16 and static 32, {a.seeds} seed(s)")
    rows = {'grow 16->32': [], 'static 16': [], 'static 32': []}
    for s in range(a.seeds):
        learn, fit_t, acc = run(dls, 16, a.epochs_b, [GrowthCallback(at=[1, 2, 3], target_width=32)], a.lr, s)
        grow_t = sum(e['time'] for e in learn.growth.history)
        rows['grow 16->32'].append((acc, fit_t, count_params(learn.model)))
        print(f"    seed {s}: {len(learn.growth.history)} growth events took {grow_t*1e3:.0f} ms of a {fit_t:.1f} s fit: {grow_t / fit_t:.2%} (goal < 1%)")
        jumps = ', '.join(f"epoch {e['epoch']}: {e['loss_before']:.3f} -> {e['loss_after']:.3f} ({e['loss_jump']:+.3f})" for e in learn.growth.history if 'loss_jump' in e)
        print(f"    training loss, mean of 20 batches before -> after each growth step: {jumps}")
        for w in (16, 32):
            _, fit_t, acc = run(dls, w, a.epochs_b, [], a.lr, s)
            rows[f'static {w}'].append((acc, fit_t, count_params(vgg(11, w))))
    print(f"\n    {'run':12s} {'accuracy':>18s} {'fit time':>10s} {'params':>10s}")
    for k, v in rows.items():
        accs = [x[0] for x in v]
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        print(f"    {k:12s} {statistics.mean(accs):10.4f} ± {sd:.4f} {statistics.mean(x[1] for x in v):9.1f}s {v[0][2]:>10,}")

def part_d(a, dls):
    kw = {} if a.sim_every is None else dict(sim_every=a.sim_every)
    print(f"\n(d) the default settings' cost{f' with sim_every={a.sim_every}' if kw else ''}: growing 16 -> 32 at epochs 1, 2, 3 of {a.epochs_d}, {a.repeats} alternating repeats")
    t = {'sim_weight=0.1 (default)': [], 'sim_weight=0': []}
    own = []
    for r in range(a.repeats):
        for name, sw in (('sim_weight=0', 0.0), ('sim_weight=0.1 (default)', 0.1)):
            learn, fit_t, _ = run(dls, 16, a.epochs_d, [with_constraint(Timed, at=[1, 2, 3], target_width=32, sim_weight=sw, **kw), FloorShare()], a.lr, r)
            t[name].append(fit_t)
            if sw:
                # the floor's products ran inside the fit: out of its time
                fit_t -= learn.growth.constrain.floor_spent
                t[name][-1] = fit_t
                share = learn.floor_share.floor / learn.floor_share.steps
                own += [(learn.growth.constrain.spent / fit_t, learn.growth.constrain.floor_spent / fit_t)]
    for k, v in t.items(): print(f"    {k:26s} fit times {', '.join(f'{x:.1f}' for x in v)} s")
    ratios = [w / wo for w, wo in zip(t['sim_weight=0.1 (default)'], t['sim_weight=0'])]
    print(f"    cost: {statistics.median(ratios) - 1:+.1%} of the fit time (median over the repeats of each pair's ratio: "
          f"{', '.join(f'{x - 1:+.1%}' for x in ratios)}; goal: at most 3% on a CPU)")
    print(f"    its floor: the constraint's two products are {share:.1%} of the FLOPs of the training steps (convs and linear "
          f"layers, 3 x forward), so the cost is {(statistics.median(ratios) - 1) / share:.2f}x its floor share")
    if dls.device.type == 'cpu':
        print(f"    timed directly: the constraint's calls and their backward took {', '.join(f'{x:.2%}' for x, _ in own)} of each fit "
              f"(goal: at most 3% on a CPU; {statistics.median(x for x, _ in own) / share:.2f}x its floor share)")
        print(f"    its floor's products alone, timed on the same weights in the same fits: {', '.join(f'{f:.2%}' for _, f in own)} "
              f"of each fit; the constraint took {', '.join(f'{x / f:.2f}' for x, f in own)}x their time")



def part_e(a, dls):
    fp16 = dls.device.type == 'cuda' if a.fp16 is None else a.fp16
    if fp16 and dls.device.type != 'cuda': raise SystemExit("--fp16: mixed precision needs a CUDA GPU; drop --fp16")
    n = a.epochs_d * len(dls.train) * dls.train.bs
    print(f"\n(e) similarity with its constraint against random growth without it, growing at epochs 1, 2, 3 of "
          f"{a.epochs_d}, {a.repeats} alternating repeats, {'mixed precision (to_fp16)' if fp16 else 'float32'}")
    for label, model, width, grow in (('VGG-11, 16 -> 32', 'vgg11', 16, dict(target_width=32)),
                                      ("the paper preset's first rounds: VGG-19, 16 channels in every conv layer, +30% a step",
                                       'vgg19u', 16, dict(by=round(PAPER_GROWTH - 1, 6)))):
        print(f"  {label}")
        t = {'random, no constraint': [], 'similarity, constraint (defaults)': []}
        parts = []
        for r in range(a.repeats):
            for name in t:
                cb = (GrowthCallback(at=[1, 2, 3], strategy='random', sim_weight=0, **grow) if name.startswith('random')
                      else with_constraint(Timed, at=[1, 2, 3], **grow))
                learn, fit_t, _ = run(dls, width, a.epochs_d, [cb], a.lr, r, model=model, fp16=fp16)
                t[name].append(fit_t)
                if not name.startswith('random'):
                    parts.append((sum(e['time'] for e in learn.growth.history) / fit_t, learn.growth.constrain.spent / fit_t))
        for k, v in t.items(): print(f"    {k:36s} {n / statistics.median(v):8.1f} images/s   (fit times {', '.join(f'{x:.1f}' for x in v)} s)")
        ratios = [s / r for s, r in zip(t['similarity, constraint (defaults)'], t['random, no constraint'])]
        print(f"    similarity / random, time per image: {statistics.median(ratios):.2f}x (median of each pair's ratio: "
              f"{', '.join(f'{x:.2f}' for x in ratios)}; goal on a GPU: at most 1.10x)")
        print(f"    its parts, shares of the similarity fit: candidate selection at the growth steps "
              f"{', '.join(f'{g:.2%}' for g, _ in parts)} (goal: under 1%); the constraint's calls and backward "
              f"{', '.join(f'{c:.2%}' for _, c in parts)}" + ("" if dls.device.type == 'cpu' else " (on a GPU: its host time)"))


if __name__ == '__main__':
    main()
