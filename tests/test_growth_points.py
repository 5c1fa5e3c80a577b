"Growth at any point of a fit: epoch start, mid-epoch (a fraction or an iteration), every strategy and training loop"
import warnings

import pytest
import torch
from fastai.callback.core import Callback
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
import fastai.callback.schedule, fastai.callback.fp16  # fit_one_cycle, fit_flat_cos, fine_tune; to_fp16

from gdnn_nb.callback import GrowthCallback, growth_x
from gdnn_nb.data import shapes_dls
from gdnn_nb.grow import _opt_state, STRATEGIES
from gdnn_nb.models import vgg, resnet, widths

warnings.filterwarnings('ignore', message='.*CUDA is not available.*')  # to_fp16 on a CPU: fastai turns autocast off itself
MODELS = {'vgg': lambda: vgg(11, 4), 'resnet': lambda: resnet(20, 4)}
N_ITER = 4  # training batches per epoch below


class Probe(Callback):
    "The model's output on fixed images (eval mode) just before growth and just after, before any training step"
    order = 10.5  # before GrowthCallback (11)

    def __init__(self, x): self.x, self.diffs, self.n_seen = x, [], 0

    def out(self):
        was = self.model.training
        self.model.eval()
        with torch.no_grad(): y = self.model(self.x.to(next(self.model.parameters()).device)).float()
        self.model.train(was)
        return y

    def before_train(self): self.before = self.out()
    def before_batch(self):  # at batch 0 the output before an epoch-start growth was taken in before_train
        if self.training and self.iter > 0: self.before = self.out()


class ProbeAfter(Callback):
    order = 11.5  # after GrowthCallback: compares with what Probe saw before it
    def before_batch(self):
        p = self.learn.probe
        if self.training and len(self.learn.growth.history) > p.n_seen:
            p.n_seen = len(self.learn.growth.history)
            p.diffs.append((p.before - p.out()).abs().max().item())


def fit(model, at, strategy='similarity', loop='fit_one_cycle', unit='epoch', fp16=False, epochs=3, **kw):
    torch.manual_seed(0)
    dls = shapes_dls(n_train=32 * N_ITER, n_test=32, bs=32, device='cpu')
    probe = Probe(dls.valid.one_batch()[0][:8])
    cb = GrowthCallback(at=at, by=0.5, strategy=strategy, unit=unit, **kw)
    learn = Learner(dls, MODELS[model](), loss_func=CrossEntropyLossFlat(), cbs=[cb, probe, ProbeAfter()])
    if fp16: learn.to_fp16()
    w0 = widths(learn.model)
    with learn.no_bar(), learn.no_logging():
        if loop == 'fine_tune': learn.fine_tune(epochs - 1, 1e-2, freeze_epochs=1)
        else: getattr(learn, loop)(epochs, 1e-2)
    return learn, probe, w0


def check(learn, probe, w0, n_events, keeps_function=True):
    cb = learn.growth
    assert len(cb.history) == n_events
    assert widths(learn.model) != w0  # it grew
    if keeps_function: assert max(probe.diffs) < 1e-4, probe.diffs
    state = _opt_state(learn.opt)
    for p in learn.model.parameters():  # optimiser state follows every resized parameter
        for v in state.get(p, {}).values():
            if torch.is_tensor(v) and v.ndim: assert v.shape == p.shape
    assert all(torch.isfinite(torch.tensor(v)).all() for v in learn.recorder.values)
    assert torch.isfinite(torch.stack(learn.recorder.losses[-N_ITER:])).all()


@pytest.mark.parametrize('model', ['vgg', 'resnet'])
@pytest.mark.parametrize('strategy', list(STRATEGIES))
def test_mid_epoch_fraction_every_strategy(model, strategy):
    learn, probe, w0 = fit(model, [0.3, 0.6], strategy)  # 12 batches: growth at batches 4 (epoch 1 start) and 7 (epoch 1, batch 3)
    check(learn, probe, w0, 2, keeps_function=strategy not in ('firefly', 'firefly-fo'))
    assert [(e['epoch'], e['iter']) for e in learn.growth.history] == [(1, 0), (1, 3)]
    assert [growth_x(e) for e in learn.growth.history] == [1.0, 1.75]


@pytest.mark.parametrize('model', ['vgg', 'resnet'])
def test_at_an_iteration_and_at_an_epoch_start(model):
    learn, probe, w0 = fit(model, [5, 9], unit='iter')
    check(learn, probe, w0, 2)
    assert [(e['epoch'], e['iter'], e['train_iter']) for e in learn.growth.history] == [(1, 1, 5), (2, 1, 9)]
    learn, probe, w0 = fit(model, [1, 2])
    check(learn, probe, w0, 2)
    assert [(e['epoch'], e['iter']) for e in learn.growth.history] == [(1, 0), (2, 0)]


@pytest.mark.parametrize('loop', ['fit_flat_cos', 'fine_tune'])
def test_mid_epoch_in_other_training_loops(loop):
    learn, probe, w0 = fit('vgg', [0.4], loop=loop)
    check(learn, probe, w0, 1)
    assert learn.growth.history[0]['iter'] not in (None, 0)  # really mid-epoch


def test_mid_epoch_keeps_the_one_cycle_schedule():
    lrs = {}
    for at in ([], [0.4]):
        learn, *_ = fit('vgg', at)
        lrs[len(at)] = learn.recorder.lrs
    assert lrs[0] == lrs[1]


def test_mid_epoch_with_to_fp16_and_under_bf16_autocast():
    learn, probe, w0 = fit('vgg', [0.4], fp16=True)
    check(learn, probe, w0, 1)
    with torch.autocast('cpu', dtype=torch.bfloat16):  # autocast caches cast weights: growth must drop them
        learn, probe, w0 = fit('resnet', [0.4, 0.7])
    check(learn, probe, w0, 2, keeps_function=False)  # bf16 rounding is far above 1e-4; what matters is that it trains


def test_mid_epoch_loss_keeps_falling():
    learn, probe, w0 = fit('vgg', [0.55], epochs=4, loss_window=4)  # growth at epoch 2, batch 1
    ev = learn.growth.history[0]
    assert (ev['epoch'], ev['iter']) == (2, 1)
    assert ev['loss_after'] < ev['loss_before'] + 0.05, ev


def test_a_compiled_model_keeps_training_after_growth():
    "learn.model = torch.compile(learn.model): growth drops the compiled code, the next batch compiles for the new shapes"
    torch.manual_seed(0)
    dls = shapes_dls(n_train=32 * N_ITER, n_test=32, bs=32, device='cpu')
    learn = Learner(dls, vgg(11, 4), loss_func=CrossEntropyLossFlat(), cbs=GrowthCallback(at=[0.6], by=0.5))
    learn.model = torch.compile(learn.model, backend='aot_eager')  # dynamo and AOT autograd as with inductor, without its C++ build
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(2, 1e-2)
    ev = learn.growth.history[0]
    assert (ev['epoch'], ev['iter']) == (1, 1) and ev['widths_after']['features.0'] == 6
    x = dls.valid.one_batch()[0].as_subclass(torch.Tensor)
    learn.model.eval()
    with torch.no_grad(): assert torch.allclose(learn.model(x), learn.model._orig_mod(x), atol=1e-5)
    assert all(torch.isfinite(torch.tensor(v)).all() for v in learn.recorder.values)
