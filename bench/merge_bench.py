"""Time of one merge step on VGG-19, beside the time of the growth step it undoes, measured side by side.

VGG-19 (width 16, VGG's doubling widths) grown by 30% with `similarity`, then merged back to its widths with
`merge_to_widths`; --rounds alternating rounds, medians. Also one training step (batch 128) for scale.

    .venv/bin/python bench/merge_bench.py [--rounds 5] [--threads 1] [--device cpu]
"""
import argparse, copy, statistics, time, warnings
import torch, torch.nn.functional as F
warnings.filterwarnings('ignore')
from gdnn_nb.grow import grow_model, growable_groups
from gdnn_nb.merge import merge_to_widths
from gdnn_nb.models import vgg, count_params


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--device', default='cpu')
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == 'cuda' else (lambda: None)
    torch.manual_seed(0)
    base = vgg(19, 16).to(dev)
    widths = {g.producer: g.width for g in growable_groups(base)}
    x, y = torch.randn(128, 3, 32, 32, device=dev), torch.randint(0, 10, (128,), device=dev)
    t = {'grow 30% (similarity)': [], 'merge back (merge_to_widths)': [], 'one training step, batch 128': []}
    for _ in range(a.rounds):
        m = copy.deepcopy(base)
        sync(); t0 = time.perf_counter(); grow_model(m, 0.3, 'similarity'); sync()
        t['grow 30% (similarity)'].append(time.perf_counter() - t0)
        grown = count_params(m)
        m.eval()
        sync(); t0 = time.perf_counter()
        with torch.no_grad(): recs = merge_to_widths(m, widths)
        sync(); t['merge back (merge_to_widths)'].append(time.perf_counter() - t0)
        assert count_params(m) == count_params(base)
        m.train(); opt = torch.optim.SGD(m.parameters(), lr=0.01)
        sync(); t0 = time.perf_counter(); F.cross_entropy(m(x), y).backward(); opt.step(); sync()
        t['one training step, batch 128'].append(time.perf_counter() - t0)
    print(f"VGG-19 width 16, {count_params(base):,} parameters, grown to {grown:,} and merged back "
          f"({sum(r.before - r.after for r in recs)} neurons in {len(recs)} layers); device {dev}, "
          f"{torch.get_num_threads()} threads, {a.rounds} rounds, medians")
    step = statistics.median(t['one training step, batch 128'])
    for k, v in t.items():
        print(f"  {k:32s} {statistics.median(v) * 1e3:9.1f} ms  {statistics.median(v) / step:6.2f} training steps")


if __name__ == '__main__': main()
