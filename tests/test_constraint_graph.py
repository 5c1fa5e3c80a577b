"""SimilarityConstraint's CUDA-graph bookkeeping, on the CPU: `_graphable`, `_warm_up` and `_capture` are replaced by a
stand-in whose replay recomputes into the outputs of its capture, as a CUDA graph writes into its static outputs. What
is checked is the bookkeeping around the graph: when it is captured again, that replays see the current weights, that a
stale backward is refused, the fall-backs, and copying. The real graph runs in tests/test_gpu.py on a machine with a GPU."""
import copy, pickle
import pytest, torch, torch.nn as nn
import gdnn_nb.constraint as sim
from gdnn_nb.constraint import SimilarityConstraint
from gdnn_nb.grow import grow_model, growable_groups
from gdnn_nb.models import vgg


class StandIn:
    "Replays `run` into the tensors its capture returned"
    def __init__(self, run): self.run, self.out = run, run()
    def replay(self):
        loss, grads = self.run()
        self.out[0].copy_(loss)
        for a, b in zip(self.out[1], grads): a.copy_(b)


@pytest.fixture
def graphs(monkeypatch):
    monkeypatch.setattr(sim, '_graphable', lambda ws: True)
    monkeypatch.setattr(sim, '_warm_up', lambda run, device: run())
    def capture(run, device):
        g = StandIn(run)
        return g, g.out
    monkeypatch.setattr(sim, '_capture', capture)


def grown(seed=0):
    torch.manual_seed(seed)
    m = vgg(11, 4)
    grow_model(m, 1.0, 'random')
    return m, [m.get_submodule(g.producer) for g in growable_groups(m)]


def loss_and_grads(sc, ps, pairs):
    for p in ps: p.weight.grad = None
    loss = sc(ps, None if pairs == 'all' else [int(p.grown_mask.sum()) for p in ps])
    loss.backward()
    return loss.detach(), [p.weight.grad.clone() for p in ps]


@pytest.mark.parametrize('batched', [False, True])
@pytest.mark.parametrize('pairs', ['all', 'new'])
def test_replays_see_the_current_weights_and_growth_recaptures(graphs, pairs, batched):
    m, ps = grown()
    sc, eager = SimilarityConstraint(pairs, batched=batched), SimilarityConstraint(pairs, graph=False)
    def check():
        (l, g), (l0, g0) = loss_and_grads(sc, ps, pairs), loss_and_grads(eager, ps, pairs)
        torch.testing.assert_close(l, l0)
        for a, b in zip(g, g0): torch.testing.assert_close(a, b)
        return l
    l1 = check()
    with torch.no_grad():
        for p in m.parameters(): p.mul_(1.5).add_(0.1 * torch.randn_like(p))  # an optimiser step: in place
    assert not torch.allclose(check(), l1)
    assert (sc.captures, sc.replays, eager.replays) == (1, 2, 0)
    grow_model(m, 0.5, 'random')
    ps = [m.get_submodule(g.producer) for g in growable_groups(m)]
    check()
    assert (sc.captures, sc.replays, sc.graph) == (2, 3, True)


def test_a_stale_backward_is_refused_and_a_no_grad_call_does_not_replay(graphs):
    m, ps = grown()
    sc = SimilarityConstraint('all')
    first = sc(ps)
    with torch.no_grad(): logged = sc(ps)  # a logging callback, say, between the loss and its backward
    assert sc.replays == 1 and not logged.requires_grad
    torch.testing.assert_close(logged, first.detach())
    first.backward()  # still the gradients of `first`
    second = sc(ps)
    sc(ps)
    with pytest.raises(RuntimeError, match='called again before the backward'): second.backward()


def test_weights_that_move_on_every_call_turn_the_graph_off(graphs):
    "Weights that are new tensors on each call (as under torch.nn.utils.parametrize) would be captured every time"
    m, ps = grown()
    sc, eager = SimilarityConstraint('all'), SimilarityConstraint('all', graph=False)
    ws = lambda: [p.weight.detach().clone().requires_grad_() for p in ps]
    for _ in range(3): sc(ws())
    with pytest.warns(UserWarning, match='new tensors on 3 calls in a row'): l = sc(ws())
    assert sc.graph is False and sc.captures == 3 and 'new tensors' in sc.graph_error
    torch.testing.assert_close(l, eager(ws()))


def test_a_failed_capture_falls_back_once(graphs, monkeypatch):
    def fail(run, device): raise RuntimeError('operation not permitted when stream is capturing')
    monkeypatch.setattr(sim, '_capture', fail)
    m, ps = grown()
    sc = SimilarityConstraint('all')
    with pytest.warns(UserWarning, match='capturing a CUDA graph failed'): l = sc(ps)
    torch.testing.assert_close(l, SimilarityConstraint('all', graph=False)(ps))
    assert sc.graph is False and sc.captures == 0 and 'not permitted' in sc.graph_error


def test_copies_and_pickles_capture_their_own(graphs):
    m, ps = grown()
    sc = SimilarityConstraint('all')
    l = sc(ps)
    for c in (copy.deepcopy(sc), pickle.loads(pickle.dumps(sc))):
        assert c._g is None and c._masks == {}
        torch.testing.assert_close(c(ps), l)
        assert c.captures == 2


def test_bad_input_gets_one_line():
    sc = SimilarityConstraint()
    lin8, lin4 = nn.Linear(3, 8), nn.Linear(3, 4)
    m8 = torch.tensor([0, 1, 0, 0, 1, 0, 0, 1], dtype=torch.bool)
    sc([lin8], [m8])
    with pytest.raises(ValueError, match=r'shape \(8,\), but the layer has 4 neurons'): sc([lin4], [m8])  # the cached mask too
    with pytest.raises(ValueError, match='got one Linear; pass a list'): sc(lin8)
    with pytest.raises(ValueError, match='got one Parameter; pass a list'): sc(lin8.weight)


def check_gradients(sc):
    ("Each gradient of `sc`'s loss reaches its weight in its own dtype, shape and memory layout, scaled by the "
     "incoming gradient, as averaging `similarity_loss` over the layers gives; two calls (a graph: capture, replay)")
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 8, 3), nn.Conv2d(8, 16, 3).to(memory_format=torch.channels_last),
              nn.Linear(16, 12).double(), nn.Linear(12, 10).half()]
    for scale in (3.0, -0.5):
        for l in layers: l.weight.grad = None
        (scale * sc(layers)).backward()
        got = [l.weight.grad.clone() for l in layers]
        for l in layers: l.weight.grad = None
        (scale * torch.stack([sim.similarity_loss(l, pairs='all').double() for l in layers]).mean()).backward()
        for l, g in zip(layers, got):
            w = l.weight
            assert (g.dtype, g.shape) == (w.dtype, w.shape)
            assert g.is_contiguous(memory_format=torch.channels_last) == w.is_contiguous(memory_format=torch.channels_last)
            tol = dict(rtol=1e-2, atol=1e-4) if w.dtype == torch.half else dict(rtol=1e-5, atol=1e-7)
            torch.testing.assert_close(g.double(), w.grad.double(), **tol)


@pytest.mark.parametrize('batched', [False, True])
def test_gradients_come_back_in_each_weights_dtype_shape_and_layout(graphs, batched):
    "Through a graph the backward scales the stored gradients at once (one `_foreach_mul`)"
    sc = SimilarityConstraint('all', batched=batched)
    check_gradients(sc)
    assert (sc.captures, sc.replays) == (1, 2)


def test_without_a_graph_the_backward_computes_the_gradients_from_the_weights_the_loss_saw():
    "Layer by layer without a graph (a CPU's default), the gradients wait for the backward; a weight changed in between is refused"
    check_gradients(SimilarityConstraint('all'))
    lin = nn.Linear(6, 5)
    sc = SimilarityConstraint()
    loss = sc([lin], [2])
    with torch.no_grad(): lin.weight.add_(1.0)
    with pytest.raises(RuntimeError, match='a weight changed in place between the loss and its backward; call backward before'):
        loss.backward()
    assert lin.weight.grad is None
    # a fresh loss of the changed weights is fine
    sc([lin], [2]).backward()
    lin.weight.grad, g = None, lin.weight.grad
    sim.similarity_loss(lin, 2).backward()
    torch.testing.assert_close(g, lin.weight.grad)
    # no backward to come: nothing kept for one, so tensors without a version counter work too
    with torch.inference_mode():
        w = torch.randn(5, 4)
        v, v0 = SimilarityConstraint()([w], [2]), sim.similarity_loss(w, 2)
    torch.testing.assert_close(v, v0)
