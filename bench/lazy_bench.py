"""Lazy similarity constraint: applied every k-th training batch with its weight times k, on the CIFAR-10 subset.

VGG-11 grown from width 16 to 32 (growth at epochs 1, 2, 3) under fit_one_cycle for --epochs epochs, with the
default constraint (pairs='new', weight 0.1) applied every k training batches (k in --ks), and without it
(k = 0 in the table: sim_weight=0), over --seeds seeds. Runs alternate between the variants for each seed.
Per run: fit time, test accuracy, mean |cos| over all pairs and over the pairs with a new neuron (mean over
the growing layers) at the end. Each run is appended to --out (JSON) as soon as it ends; the table at the
end gives mean and spread (sd) over the seeds, and the fit time against sim_weight=0. Runs already in any of the
--out files are skipped, so seeds can be split over processes (--first-seed) and summarised together (--summary:
the runs of --epochs and --sim-weight in all the --out files, each (k, seed) once).

    .venv/bin/python bench/lazy_bench.py [--epochs 5] [--seeds 3] [--threads 1] [--ks 0 1 4 8] [--sim-weight 0.1]
        [--first-seed 0] [--out bench/out/lazy.json [more.json ...]] [--summary]
"""
import argparse, json, random, statistics, time, warnings
from pathlib import Path
import torch
warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated')
from fastai.vision.all import Learner, accuracy, CrossEntropyLossFlat
from gdnn_nb.callback import GrowthCallback
from gdnn_nb.data import cifar_dls, find_cifar_npz
from gdnn_nb.models import vgg
from gdnn_nb.similarity import similarity_matrix

def growth_cb(k, **kwargs):
    "GrowthCallback with the constraint every k-th training batch (k = 0: without it)"
    return GrowthCallback(**(kwargs | dict(sim_weight=0))) if k == 0 else GrowthCallback(sim_every=k, **kwargs)

@torch.no_grad()
def cos_stats(cb):
    "Mean |cos| over all pairs and over the pairs with a new neuron, averaged over the growing layers"
    alls, news = [], []
    for p in cb.producers():
        C = similarity_matrix(p).abs()
        n = len(C)
        off = ~torch.eye(n, dtype=torch.bool, device=C.device)
        alls.append(C[off].mean().item())
        m = getattr(p, 'grown_mask', None)
        if m is not None and m.any(): news.append(C[(m[:, None] | m[None, :]) & off].mean().item())
    return statistics.mean(alls), statistics.mean(news) if news else float('nan')

def run(dls, k, epochs, lr, seed, sim_weight):
    torch.manual_seed(seed); random.seed(seed)
    cb = growth_cb(k, at=[1, 2, 3], target_width=32, sim_weight=sim_weight)
    learn = Learner(dls, vgg(11, 16), loss_func=CrossEntropyLossFlat(), metrics=accuracy, cbs=[cb])
    with learn.no_bar(), learn.no_logging():
        t0 = time.perf_counter()
        learn.fit_one_cycle(epochs, lr)
        t = time.perf_counter() - t0
        acc = learn.validate()[1]
    mc, mn = cos_stats(cb)
    return dict(k=k, seed=seed, epochs=epochs, sim_weight=sim_weight, fit_s=t, accuracy=float(acc), mean_cos=mc, mean_cos_new=mn,
                threads=torch.get_num_threads())

def _key(r): return r['k'], r['seed'], r['epochs'], r.get('sim_weight', 0.1)

def summary(rows):
    "Mean and sd over the seeds of each k; a run found twice (in two files, say) counts once"
    rows = list({_key(r): r for r in rows}.values())
    ks = sorted({r['k'] for r in rows})
    base = [r['fit_s'] for r in rows if r['k'] == 0]
    print(f"\n{'k':>3s} {'runs':>4s} {'accuracy':>16s} {'mean |cos|':>16s} {'|cos| new pairs':>16s} {'fit s':>7s} {'vs off':>7s}")
    ms = lambda v: f"{statistics.mean(v):.4f} ± {statistics.stdev(v) if len(v) > 1 else 0:.4f}"
    for k in ks:
        rs = [r for r in rows if r['k'] == k]
        ft = statistics.median(r['fit_s'] for r in rs)
        vs = f"{ft / statistics.median(base) - 1:+7.1%}" if base else ''
        print(f"{k if k else 'off':>3} {len(rs):4d} {ms([r['accuracy'] for r in rs]):>16s} {ms([r['mean_cos'] for r in rs]):>16s} "
              f"{ms([r['mean_cos_new'] for r in rs]):>16s} {ft:7.1f} {vs}")

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--epochs', type=int, default=5)
    p.add_argument('--seeds', type=int, default=3)
    p.add_argument('--first-seed', type=int, default=0, help='seeds first-seed .. first-seed + seeds - 1 (to split them over processes)')
    p.add_argument('--ks', type=int, nargs='+', default=[0, 1, 4, 8], help='0 runs without the constraint')
    p.add_argument('--sim-weight', type=float, default=0.1, help="the constraint's weight (before the factor k)")
    p.add_argument('--bs', type=int, default=128)
    p.add_argument('--lr', type=float, default=3e-3)
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: as torch starts)')
    p.add_argument('--out', default=['bench/out/lazy.json'], nargs='+', help='where runs are appended (the first); --summary reads them all')
    p.add_argument('--summary', action='store_true', help='only print the table of the runs already in --out')
    a = p.parse_args()
    out = Path(a.out[0])
    read = lambda o: json.loads(o.read_text()) if o.exists() else []
    rows = [r for o in map(Path, a.out) for r in read(o)]
    if a.summary:
        return summary([r for r in rows if r['epochs'] == a.epochs and r.get('sim_weight', 0.1) == a.sim_weight])
    if a.threads: torch.set_num_threads(a.threads)
    npz = find_cifar_npz()
    if npz is None: raise SystemExit("the CIFAR-10 subset is missing: put it at ../shared/data/cifar10_subset.npz or set GDNN_CIFAR_NPZ")
    dls = cifar_dls(path=npz, bs=a.bs, device='cpu')
    print(f"CIFAR-10 subset, VGG-11 16 -> 32, {a.epochs} epochs, sim_weight {a.sim_weight}, ks {a.ks}, {a.seeds} seeds, {torch.get_num_threads()} threads", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    for s in range(a.first_seed, a.first_seed + a.seeds):
        ks = list(a.ks)
        random.Random(s).shuffle(ks)
        for k in ks:
            # read again: another process may have written its runs since
            rows = [r for o in map(Path, a.out) for r in read(o)]
            if (k, s, a.epochs, a.sim_weight) in {_key(r) for r in rows}: continue
            r = run(dls, k, a.epochs, a.lr, s, a.sim_weight)
            rows.append(r)
            tmp = out.with_suffix('.tmp')
            tmp.write_text(json.dumps(read(out) + [r], indent=1))
            tmp.replace(out)  # a killed process leaves the file whole
            print(f"seed {s} k {k}: accuracy {r['accuracy']:.4f}, mean |cos| {r['mean_cos']:.4f} (new pairs {r['mean_cos_new']:.4f}), "
                  f"fit {r['fit_s']:.1f} s", flush=True)
    summary([r for r in rows if r['epochs'] == a.epochs and r.get('sim_weight', 0.1) == a.sim_weight])

if __name__ == '__main__':
    main()
