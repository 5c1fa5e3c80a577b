"similarity_loss against `reference_loss`, the definition written plainly (normalise, full product, relu/abs/mask chain, autograd), in float64"
import pytest, torch, torch.nn as nn, torch.nn.functional as F
from gdnn_nb.constraint import similarity_loss, reference_loss


def value_and_grad(f, w, *args):
    w = w.clone().requires_grad_()
    loss = f(w, *args)
    if loss.requires_grad: loss.backward()
    return loss.detach(), (torch.zeros_like(w) if w.grad is None else w.grad)


def weights(shape, dead, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(*shape, generator=g, dtype=torch.float64)
    w[0] += 3 * w[1]                       # a strongly correlated pair, so that a margin bites
    if dead:
        w[2] = 0                           # a dead neuron
        w[3] *= 1e-10                      # and one below the norm's eps
    return w


SHAPES = [(12, 10), (20, 3, 3, 3), (7, 40), (2, 5)]  # linear, conv, d > n, two neurons


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('dead', [False, True])
@pytest.mark.parametrize('margin', [0.0, 0.05, 0.3])
@pytest.mark.parametrize('pairs', ['all', 'new'])
def test_same_value_and_gradient(shape, dead, margin, pairs):
    if dead and shape[0] < 4: pytest.skip('too few neurons for a dead one and a tiny one')
    w, n = weights(shape, dead), shape[0]
    g = torch.Generator().manual_seed(1)
    for new in (None, 0, 1, n // 2, n, torch.rand(n, generator=g) < 0.4, torch.arange(n) == 1):
        v, gr = value_and_grad(similarity_loss, w, new, pairs, margin)
        v0, gr0 = value_and_grad(reference_loss, w, new, pairs, margin)
        assert v.dtype == torch.float64
        torch.testing.assert_close(v, v0, atol=1e-6, rtol=0)
        torch.testing.assert_close(gr, gr0, atol=1e-6, rtol=1e-6)


def test_modules_and_half_precision():
    torch.manual_seed(0)
    for layer in (nn.Conv2d(8, 16, 3), nn.Linear(20, 12)):
        mask = torch.arange(len(layer.weight)) >= 5
        for pairs in ('new', 'all'):
            layer.weight.grad = None
            l = similarity_loss(layer, mask, pairs, 0.1)
            l.backward()
            w = layer.weight.detach().double()
            v0, g0 = value_and_grad(reference_loss, w, mask, pairs, 0.1)
            assert l.dtype == torch.float32
            torch.testing.assert_close(l.double(), v0, atol=1e-6, rtol=0)
            torch.testing.assert_close(layer.weight.grad.double(), g0, atol=1e-5, rtol=1e-4)
    wh = torch.randn(16, 27, dtype=torch.float16, requires_grad=True)
    l = similarity_loss(wh, 4, 'all')
    l.backward()
    assert l.dtype == torch.float32 and torch.isfinite(wh.grad).all()


def test_no_pairs_no_gradient_work():
    w = torch.randn(6, 9, requires_grad=True)
    for new, pairs in ((None, 'new'), (0, 'new')):
        l = similarity_loss(w, new, pairs)
        assert l.item() == 0 and not l.requires_grad
    assert similarity_loss(torch.randn(1, 9, requires_grad=True), pairs='all').item() == 0


@pytest.mark.parametrize('batched', [False, True])
@pytest.mark.parametrize('margin', [0.0, 0.2])
@pytest.mark.parametrize('pairs', ['new', 'all'])
def test_constraint_over_layers_is_the_mean_of_the_plain_formula(pairs, margin, batched):
    """SimilarityConstraint over layers of many shapes (the batched path zero-pads them into buckets) equals the mean
    of the plain formula over the layers with a selected pair, value and gradient, with dead and tiny neurons, counts,
    scattered masks and a layer without new neurons"""
    from gdnn_nb.constraint import SimilarityConstraint
    shapes = [(32, 3, 3, 3), (64, 32, 3, 3), (20, 36), (128, 64, 3, 3), (9, 6), (64, 20)]
    ws = [weights(s, dead=i % 2 == 0, seed=i).requires_grad_() for i, s in enumerate(shapes)]
    g = torch.Generator().manual_seed(1)
    news = [16, torch.rand(64, generator=g) < 0.3, None, 64, 1, torch.rand(64, generator=g) < 0.5]
    loss = SimilarityConstraint(pairs, margin, batched=batched)(ws, news)
    loss.backward()
    terms = [(i, value_and_grad(reference_loss, w.detach(), nw, pairs, margin)) for i, (w, nw) in enumerate(zip(ws, news))
             if pairs == 'all' or nw is not None]
    torch.testing.assert_close(loss.detach(), torch.stack([v for _, (v, _) in terms]).mean(), rtol=1e-9, atol=1e-12)
    for i, (_, gr) in terms: torch.testing.assert_close(ws[i].grad, gr / len(terms), rtol=1e-7, atol=1e-12)
    if pairs == 'new': assert ws[2].grad is None
