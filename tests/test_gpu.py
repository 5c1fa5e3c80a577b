"""Growth on a CUDA GPU: mixed precision (fastai's `to_fp16`, a real GradScaler), a model compiled by torch.compile's
default backend (inductor), SyncBatchNorm under DistributedDataParallel (one process, NCCL), and `train_run`, the
function behind gdnn-train and gdnn-compare, with its data on the GPU. Skipped without a GPU: CI has none; a machine
with one runs `pytest tests/test_gpu.py`."""
import pytest
import torch
import torch.nn as nn
import torch.distributed as dist
from fastai.callback.core import Callback
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
import fastai.callback.schedule, fastai.callback.fp16  # fit_one_cycle; to_fp16

from gdnn_nb.callback import GrowthCallback
from gdnn_nb.data import shapes_dls
from gdnn_nb.grow import _opt_state, grow_model, growable_groups
from gdnn_nb.constraint import SimilarityConstraint
from gdnn_nb.models import vgg, resnet, widths
from conftest import free_port
from test_growth_points import Probe, ProbeAfter, N_ITER

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
MODELS = {'vgg': lambda: vgg(11, 4), 'resnet': lambda: resnet(20, 4)}


class Scales(Callback):
    "The GradScaler's scale after every training step (fastai drops the scaler after the fit)"
    order = 12
    def before_fit(self): self.scales, self.skipped = [], 0
    def after_cancel_step(self): self.skipped += 1
    def after_batch(self):
        if self.training and getattr(self.learn, 'scaler', None) is not None:
            self.scales.append(self.learn.scaler.get_scale())


def cuda_fit(model, at, strategy='similarity', fp16=False, epochs=3, compile=False, **kw):
    torch.manual_seed(0)
    dls = shapes_dls(n_train=32 * N_ITER, n_test=32, bs=32, device='cuda')
    probe = Probe(dls.valid.one_batch()[0][:8])
    probes = [] if compile else [probe, ProbeAfter()]  # eval-mode probes would add compilations
    learn = Learner(dls, MODELS[model]().cuda(), loss_func=CrossEntropyLossFlat(),
                    cbs=[GrowthCallback(at=at, by=0.5, strategy=strategy, **kw), Scales()] + probes)
    if fp16: learn.to_fp16()
    if compile: learn.model = torch.compile(learn.model)
    w0 = widths(learn.model)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(epochs, 1e-2)
    return learn, probe, w0


def check_trained(learn, w0, n_events):
    assert len(learn.growth.history) == n_events and widths(learn.model) != w0
    assert all(p.is_cuda for p in learn.model.parameters())
    state = _opt_state(learn.opt)
    for p in learn.model.parameters():  # optimiser state follows every resized parameter, on the GPU
        for v in state.get(p, {}).values():
            if torch.is_tensor(v) and v.ndim: assert v.shape == p.shape and v.is_cuda
    assert torch.isfinite(torch.stack(learn.recorder.losses[-N_ITER:])).all()
    sc = learn.constrain_similarity.sc  # the constraint ran as a CUDA graph, recaptured after each growth step
    assert sc.graph_error is None and 1 <= sc.captures and sc.replays > sc.captures, vars(sc)


@pytest.mark.parametrize('model', ['vgg', 'resnet'])
@pytest.mark.parametrize('strategy', ['similarity', 'random', 'net2net', 'firefly-fo', 'firefly'])
def test_fp16_mid_epoch_every_strategy(model, strategy):
    "fp16 autocast and a GradScaler: growth mid-epoch and at an epoch start keeps a finite, scaled, training fit"
    learn, probe, w0 = cuda_fit(model, [0.3, 0.6], strategy, fp16=True)
    check_trained(learn, w0, 2)
    assert [(e['epoch'], e['iter']) for e in learn.growth.history] == [(1, 0), (1, 3)]
    sc = learn.scales
    assert len(sc.scales) == 3 * N_ITER and sc.skipped <= 2, (sc.skipped, sc.scales)  # no overflow spiral after growth
    assert min(sc.scales) >= 2.0 ** 10, sc.scales
    if strategy not in ('firefly', 'firefly-fo'):  # function preserved up to fp16 rounding of the outputs
        assert max(probe.diffs) < 5e-2, probe.diffs


def test_compiled_by_inductor_keeps_training_after_growth():
    learn, probe, w0 = cuda_fit('vgg', [0.6], compile=True, epochs=2)
    check_trained(learn, w0, 1)
    x = learn.dls.valid.one_batch()[0].as_subclass(torch.Tensor)
    learn.model.eval()
    with torch.no_grad(): assert torch.allclose(learn.model(x), learn.model._orig_mod(x), atol=2e-3)  # float reordering in fused kernels; stale weights would be far off


def test_sync_batchnorm_under_ddp_grows_mid_epoch():
    """SyncBatchNorm (what fastai's distrib_ctx makes of BatchNorm2d) in a model wrapped in DDP over NCCL: growth
    mid-epoch widens each SyncBatchNorm with its conv and rewraps the model. One GPU, so one process: the statistics
    are not synchronised across GPUs here (that needs two), and fastai's distrib_ctx leaves a 1-process model
    unwrapped, so the model is wrapped by hand"""
    dist.init_process_group('nccl', init_method=f'tcp://127.0.0.1:{free_port()}', rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        dls = shapes_dls(n_train=32 * N_ITER, n_test=32, bs=32, device='cuda')
        model = nn.SyncBatchNorm.convert_sync_batchnorm(vgg(11, 4)).cuda()
        w0 = widths(model)
        learn = Learner(dls, nn.parallel.DistributedDataParallel(model, device_ids=[0]),
                        loss_func=CrossEntropyLossFlat(), cbs=GrowthCallback(at=[0.3, 0.6], by=0.5))
        with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(3, 1e-2)
        assert isinstance(learn.model, nn.parallel.DistributedDataParallel)
        m = learn.model.module
        assert len(learn.growth.history) == 2 and widths(m) != w0
        sc = learn.constrain_similarity.sc
        assert sc.graph_error is None and sc.captures >= 1 and sc.replays > sc.captures, vars(sc)
        assert torch.isfinite(torch.stack(learn.recorder.losses[-N_ITER:])).all()
        bns = [b for b in m.modules() if isinstance(b, nn.SyncBatchNorm)]
        convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
        assert len(bns) == len(convs) == 8
        for c, b in zip(convs, bns):
            assert b.num_features == c.out_channels == b.running_mean.numel() == b.weight.numel()
    finally: dist.destroy_process_group()


def test_train_run_on_the_gpu_with_fp16():
    "gdnn-train and gdnn-compare go through train_run: its data on the GPU, its model checked before training"
    from gdnn_nb.train import train_run
    learn, _, s = train_run('shapes', 'vgg11', width=4, epochs=2, grow_at=[1], device='cuda', fp16=True,
                            n_train=256, n_test=64, bs=64, progress=False)
    assert len(learn.growth.history) == 1 and s['train_flops'] > 0 and 0 <= s['accuracy'] <= 1
    assert next(learn.model.parameters()).is_cuda


def constraint_and_grads(sc, model, pairs):
    ps = [model.get_submodule(g.producer) for g in growable_groups(model)]
    for p in ps: p.weight.grad = None
    loss = sc(ps, None if pairs == 'all' else [getattr(p, 'grown_mask', None) for p in ps])
    loss.backward()
    return loss.detach(), [p.weight.grad.clone() for p in ps]

@pytest.mark.parametrize('pairs', ['all', 'new'])
def test_constraint_graph_replays_what_eager_computes(pairs):
    """SimilarityConstraint on the GPU (the default; a CUDA graph of the layers one by one, and of the layers
    zero-padded into batches; the batches without a graph): values and gradients equal those computed layer by layer without a
    graph; the optimiser's in-place updates are seen by the replay; growth (new weight tensors) makes it capture a new
    graph; a second call before the first loss's backward is an error, not wrong gradients"""
    torch.manual_seed(0)
    model = vgg(11, 8)
    grow_model(model, 1.0, 'random')
    model = model.cuda()
    eager = SimilarityConstraint(pairs, graph=False, batched=False)
    scs = [SimilarityConstraint(pairs), SimilarityConstraint(pairs, batched=False), SimilarityConstraint(pairs, graph=False, batched=True),
           SimilarityConstraint(pairs, batched=True)]
    def check():
        l0, g0 = constraint_and_grads(eager, model, pairs)
        for sc in scs:
            l, g = constraint_and_grads(sc, model, pairs)
            torch.testing.assert_close(l, l0, rtol=1e-5, atol=1e-7)
            for a, b in zip(g, g0): torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)
        return l0
    l1 = check()
    with torch.no_grad():
        for p in model.parameters(): p.add_(0.3 * torch.randn_like(p) * p.std())  # as an optimiser step: in place
    assert not torch.allclose(check(), l1)
    sc = scs[0]
    assert (sc.captures, sc.replays) == (1, 2) and sc.graph_error is None
    grow_model(model, 0.5, 'random')
    check()
    assert (sc.captures, sc.replays) == (2, 3) and scs[1].captures == 2 and scs[2].replays == 0
    ps = [model.get_submodule(g.producer) for g in growable_groups(model)]
    first = sc(ps, None if pairs == 'all' else [int(p.grown_mask.sum()) for p in ps])
    sc(ps, None if pairs == 'all' else [int(p.grown_mask.sum()) for p in ps])
    with pytest.raises(RuntimeError, match='called again before the backward'): first.backward()


def test_constraint_graph_in_fp16_fit_equals_eager_fit():
    "Two fp16 fits from one seed, growing mid-epoch: with the graph and without it, the same weights at the end"
    res, det = [], torch.backends.cudnn.deterministic
    torch.backends.cudnn.deterministic = True  # the two fits may differ by the graph alone
    for graph in (True, False):
        torch.manual_seed(0)
        dls = shapes_dls(n_train=32 * N_ITER, n_test=32, bs=32, device='cuda')
        learn = Learner(dls, vgg(11, 4).cuda(), loss_func=CrossEntropyLossFlat(),
                        cbs=GrowthCallback(at=[0.3], by=0.5, strategy='random', pairs='all', sim_weight=1.0))
        learn.growth.constrain.sc = SimilarityConstraint('all', graph=graph)
        learn.to_fp16()
        with learn.no_bar(), learn.no_logging(): learn.fit(2, 1e-2)
        assert learn.growth.constrain.sc.replays == (2 * N_ITER if graph else 0)
        res.append([p.detach().clone() for p in learn.model.parameters()])
    torch.backends.cudnn.deterministic = det
    for a, b in zip(*res): torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


def test_grow_then_merge_back_under_fp16():
    "Grow past a size, merge back to it mid-epoch, under fp16: the optimiser state and the weights stay on the GPU"
    from gdnn_nb.merge import MergeCallback
    from gdnn_nb.models import count_params
    torch.manual_seed(0)
    dls = shapes_dls(n_train=32 * N_ITER, n_test=32, bs=32, device='cuda')
    target = count_params(vgg(11, 6))
    learn = Learner(dls, vgg(11, 4).cuda(), loss_func=CrossEntropyLossFlat(),
                    cbs=[GrowthCallback(at=[1], by=1.0), MergeCallback(at=[0.7], target_params=target)]).to_fp16()
    with learn.no_bar(), learn.no_logging(): learn.fit(3, 1e-3)
    assert learn.merge.history and count_params(learn.model) <= target
    state = _opt_state(learn.opt)
    for p in learn.model.parameters():
        assert p.is_cuda
        for v in state.get(p, {}).values():
            if torch.is_tensor(v) and v.ndim: assert v.shape == p.shape and v.is_cuda
    assert torch.isfinite(torch.stack(learn.recorder.losses[-N_ITER:])).all()
