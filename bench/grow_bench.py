"""Time to grow every group of a VGG-19 by 30%, for each strategy, on one device.

Goal: under 100 ms at width 16 on the CPU for `similarity`, `random` and `net2net`; for `firefly-fo`,
the time and the number of batches it used (it runs forward and backward passes on them).
Also: how growth time scales from width 16 to width 64. Medians of --repeats runs, each on a
freshly built model, all in one process.

    .venv/bin/python bench/grow_bench.py [--widths 16 32 64] [--repeats 5] [--bs 64] [--batches 2]
"""
import argparse, os, statistics, time
from pathlib import Path
import numpy as np, torch, torch.nn.functional as F
from gdnn_nb.grow import grow_model
from gdnn_nb.models import vgg, count_params


def firefly_batches(n, bs, device):
    "n batches of real CIFAR-10 images when the subset is at hand, random images otherwise"
    p = Path(os.environ.get('GDNN_CIFAR_NPZ', Path(__file__).resolve().parents[2]/'shared/data/cifar10_subset.npz'))
    if p.exists():
        d = np.load(p)
        x = torch.from_numpy(d['x_train'][:n * bs]).float().div(255).sub(0.5).div(0.25)
        y = torch.from_numpy(d['y_train'][:n * bs]).long()
        src = 'CIFAR-10 subset'
    else: x, y, src = torch.randn(n * bs, 3, 32, 32), torch.randint(0, 10, (n * bs,)), 'random images'
    return [(xb.to(device), yb.to(device)) for xb, yb in zip(x.split(bs), y.split(bs))], src


def time_growth(width, strategy, repeats, device, **opts):
    times, info = [], {}
    for r in range(repeats):
        torch.manual_seed(r)
        m = vgg(19, width).to(device)
        if device.startswith('cuda'): torch.cuda.synchronize()
        t0 = time.perf_counter()
        recs = grow_model(m, 0.3, strategy, **opts)
        if device.startswith('cuda'): torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        info = dict(groups=len(recs), batches=sum(rec.info.get('batches', 0) for rec in recs),
                    params=f"{count_params(vgg(19, width)):,} -> {count_params(m):,}")
    return statistics.median(times), info


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--widths', type=int, nargs='+', default=[16, 32, 64])
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--bs', type=int, default=64, help='firefly batch size')
    p.add_argument('--batches', type=int, default=2, help='firefly batches per group')
    p.add_argument('--device', default='cpu')
    a = p.parse_args()
    batches, src = firefly_batches(a.batches, a.bs, a.device)
    print(f"VGG-19, grow every group by 30%, device {a.device} ({torch.get_num_threads()} threads), torch {torch.__version__}; "
          f"firefly: {a.batches} batches of {a.bs} ({src}) per group")
    res = {}
    for s in ('similarity', 'random', 'net2net', 'firefly-fo'):
        opts = dict(batches=batches, loss_func=F.cross_entropy) if s == 'firefly-fo' else {}
        for w in a.widths:
            reps = max(1, a.repeats // 2) if s == 'firefly-fo' else a.repeats
            t, info = time_growth(w, s, reps, a.device, **opts)
            res[s, w] = t
            extra = f", {info['batches']} batches in all" if s == 'firefly-fo' else ''
            print(f"{s:10s} width {w:3d}: {t*1e3:9.1f} ms  ({info['groups']} groups, params {info['params']}{extra})")
    lo, hi = min(a.widths), max(a.widths)
    print(f"\nscaling width {lo} -> {hi}: " + ', '.join(f"{s} {res[s, hi]/res[s, lo]:.1f}x" for s in ('similarity', 'random', 'net2net', 'firefly-fo')))
    ok = all(res[s, 16] < 0.1 for s in ('similarity', 'random', 'net2net')) if 16 in a.widths else None
    if ok is not None: print(f"goal (<100 ms at width 16 for similarity, random, net2net): {'met' if ok else 'NOT met'}")

if __name__ == '__main__':
    main()
