"""Survey torchvision's classification models for growth at 32x32 on this machine: build time, whether a forward
pass runs, groups found, groups `growth_check` keeps (with the reasons for the others), and the largest relative
change of the eval output after growing every kept group by one neuron. tests/test_model_zoo.py holds its lists.

    .venv/bin/python tools/zoo_survey.py
"""
import time, warnings
import torch
from torchvision import models as tvm
from gdnn_nb.grow import growable_groups, growth_check, grow_model

warnings.simplefilter('ignore')
x = torch.randn(2, 3, 32, 32)
print(f"{'model':20s} {'build':>6s} {'groups':>6s} {'kept':>5s} {'max change':>10s}  left out, and why")
for n in tvm.list_models(module=tvm):
    t = time.perf_counter()
    m = tvm.get_model(n, weights=None, num_classes=10).eval()
    tb = time.perf_counter() - t
    try:
        with torch.no_grad(): y0 = m(x)
    except Exception as e:
        print(f"{n:20s} {tb:5.2f}s  does not run at 32x32: {str(e).splitlines()[0][:60]}"); continue
    gs = growable_groups(m)
    why = growth_check(m, gs, x) if gs else []
    ok = [g for g, w in zip(gs, why) if w is None]
    d = float('nan')
    if ok:
        grow_model(m, 1, 'random', layers=ok)
        with torch.no_grad(): d = ((m(x) - y0).abs().max() / y0.abs().max()).item()
    print(f"{n:20s} {tb:5.2f}s {len(gs):6d} {len(ok):5d} {d:10.1e}  {', '.join(sorted({w for w in why if w}))}",
          flush=True)
