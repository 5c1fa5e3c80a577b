"""What one Firefly growth step costs: time and FLOPs of `firefly` on the experiment's VGG-11 (width 16) and the
paper's VGG-19 (16 channels in every conv layer), next to `random` on the same model, in one process.

Firefly trains its candidates for an epoch and scores them over another, in a network with 2n + 70 channels per
layer, so its step is priced here in epochs of training the model before growth (3 x its forward FLOPs per image).
The data are the CIFAR-10 subset (one epoch: its 5,085 training images in batches of 128) when it is at hand,
random images of that number otherwise.

    .venv/bin/python bench/firefly_bench.py [--models vgg11 vgg19u] [--ratio 0.35] [--threads 1] [--out FILE]
"""
import argparse, os, platform, time
from datetime import date
from pathlib import Path
import torch, torch.nn.functional as F
from gdnn_nb.data import find_cifar_npz, read_npz
from gdnn_nb.grow import grow_model
from gdnn_nb.models import count_flops
from gdnn_nb.train import build_model

ROOT = Path(__file__).resolve().parents[1]


def epoch_batches(bs=128):
    "One epoch of training batches: the CIFAR-10 subset when it is at hand, random images otherwise"
    npz = find_cifar_npz()
    if npz is None: x, y, src = torch.randn(5085, 3, 32, 32), torch.randint(0, 10, (5085,)), 'random images'
    else:
        d = read_npz(npz)
        x = torch.from_numpy(d['x_train']).float().div(255).sub(0.5).div(0.25)
        y, src = torch.from_numpy(d['y_train']).long(), 'the CIFAR-10 subset'
    return list(zip(x.split(bs), y.split(bs))), src


def step(name, strategy, batches, ratio):
    "Seconds and candidate FLOPs of one growth step of every group of a fresh `name` by `ratio`"
    torch.manual_seed(0)
    model = build_model(name, 16).eval()
    t0 = time.perf_counter()
    recs = grow_model(model, ratio, strategy, generator=torch.Generator().manual_seed(0),
                      **(dict(batches=batches, loss_func=F.cross_entropy) if strategy == 'firefly' else {}))
    return time.perf_counter() - t0, recs[0].info.get('candidate_flops', 0), sum(r.after - r.before for r in recs)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--models', nargs='+', default=['vgg11', 'vgg19u'], help='models of gdnn_nb.train.MODELS, width 16')
    p.add_argument('--ratio', type=float, default=0.35, help='growth of all neurons in one step (Firefly: 0.35)')
    p.add_argument('--threads', type=int, default=1, help='torch threads')
    p.add_argument('--out', default=str(ROOT/'bench'/'results'/'firefly_step_cpu.txt'), help='where the table goes too')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    batches, src = epoch_batches()
    n = sum(len(y) for _, y in batches)
    lines = [f"# bench/firefly_bench.py {' '.join(os.sys.argv[1:])}; {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores, {a.threads} torch thread(s), torch {torch.__version__}, {date.today()}",
             f"one growth step of {a.ratio:.0%} of all neurons; firefly's epochs: {n} images of {src}",
             f"{'model':8} {'strategy':8} {'neurons':>7} {'seconds':>8} {'candidate FLOPs':>16} {'training epochs':>16}"]
    for name in a.models:
        epoch = 3 * count_flops(build_model(name, 16)) * n
        for strategy in ('random', 'firefly'):
            s, fl, k = step(name, strategy, batches, a.ratio)
            lines.append(f"{name:8} {strategy:8} {k:7d} {s:8.1f} {fl:16.3g} {fl / epoch:16.1f}")
            print(lines[-1], flush=True)
    Path(a.out).write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines[:2]))


if __name__ == '__main__': main()
