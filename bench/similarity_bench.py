"""Cost of the similarity map and constraint against a bare matrix product.

For a 512 x 4608 weight (the widest 3x3 conv of VGG: 512 filters of 512x3x3), times on one device,
side by side in one run:
  bare W @ W.T, forward and forward+backward,
  similarity_matrix forward,
  similarity_loss forward+backward, with pairs='all' and with pairs='new' (30% new neurons).
Goal: similarity_loss forward+backward at most 1.2x the bare product's forward+backward (bench/constraint_bench.py
sets it beside the floor and the layer shapes of a VGG).

    .venv/bin/python bench/similarity_bench.py [--device cuda] [--n 512] [--d 4608]
"""
import argparse
import torch
from torch.utils.benchmark import Timer
from gdnn_nb.similarity import similarity_matrix
from gdnn_nb.constraint import similarity_loss


def bare_fwd_bwd(W):
    (W @ W.T).sum().backward()

def loss_fwd_bwd(W, new, pairs):
    similarity_loss(W, new=new, pairs=pairs).backward()

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--n', type=int, default=512)
    p.add_argument('--d', type=int, default=4608)
    a = p.parse_args()
    torch.manual_seed(0)
    W = (torch.randn(a.n, a.d, device=a.device) * 0.01).requires_grad_()
    k = int(0.3 * a.n)
    cases = {
        'bare W @ W.T forward': ('W @ W.T', {}),
        'bare W @ W.T fwd+bwd': ('bare_fwd_bwd(W)', {}),
        'similarity_matrix forward': ('similarity_matrix(W)', {}),
        "similarity_loss pairs='all' fwd+bwd": ("loss_fwd_bwd(W, None, 'all')", {}),
        f"similarity_loss pairs='new' ({k} new) fwd+bwd": ("loss_fwd_bwd(W, k, 'new')", {}),
    }
    g = dict(W=W, k=k, bare_fwd_bwd=bare_fwd_bwd, loss_fwd_bwd=loss_fwd_bwd, similarity_matrix=similarity_matrix)
    res = {}
    for name, (stmt, _) in cases.items():
        t = Timer(stmt, globals=g, num_threads=torch.get_num_threads()).blocked_autorange(min_run_time=2)
        res[name] = t.median
        W.grad = None
    print(f"device {a.device} ({torch.cuda.get_device_name() if a.device.startswith('cuda') else f'{torch.get_num_threads()} threads'}), "
          f"weight {a.n} x {a.d}, torch {torch.__version__}")
    base = res['bare W @ W.T fwd+bwd']
    for name, t in res.items():
        print(f"{name:45s} {t*1e3:9.2f} ms   {t/base:5.2f}x bare fwd+bwd")
    ratio = res["similarity_loss pairs='all' fwd+bwd"] / base
    print(f"goal: similarity_loss fwd+bwd at most 1.2x bare fwd+bwd -> {ratio:.2f}x ({'met' if ratio <= 1.2 else 'NOT met'})")

if __name__ == '__main__':
    main()
