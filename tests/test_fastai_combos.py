"""GrowthCallback inside the rest of fastai: each workflow a fastai user combines it with, one test each.

Small fits on the embedded shapes data (VGG-11 at width 4), growth at an epoch start or mid-epoch."""
import warnings

import pytest, torch, torch.nn as nn
from fastai.callback.progress import ProgressCallback
from fastai.callback.tracker import SaveModelCallback, EarlyStoppingCallback, ReduceLROnPlateau
from fastai.callback.training import GradientAccumulation
from fastai.callback.fp16 import MixedPrecision
from fastai.callback.mixup import MixUp
from fastai.callback.core import Callback, CancelFitException
from fastai.callback.progress import CSVLogger
import fastai.callback.channelslast  # Learner.to_channelslast
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
from fastai.metrics import accuracy
from fastai.optimizer import ranger, Adam, SGD, RAdam, Lamb, QHAdam, OptimWrapper
from fastcore.basics import noop

from gdnn_nb.callback import GrowthCallback
from gdnn_nb.data import shapes_dls
from gdnn_nb.grow import GrowthWarning, growable_groups, grow_model, resize_opt_state, out_width
from gdnn_nb.models import vgg, widths


@pytest.fixture(scope='module')
def dls(): return shapes_dls(n_train=256, n_test=64, bs=64, seed=0)


def learner(dls, cbs=None, model=None, tmp=None, **kw):
    torch.manual_seed(0)
    learn = Learner(dls, model or vgg(11, 4), loss_func=CrossEntropyLossFlat(), metrics=accuracy,
                    cbs=cbs, **kw)
    learn.remove_cb(ProgressCallback)
    learn.logger = noop
    if tmp is not None: learn.path = tmp
    return learn


def first(learn): return out_width(learn.model.features[0])


def test_a_second_fit_trains_at_the_grown_width_and_says_so_once(dls):
    learn = learner(dls, GrowthCallback(at=[1], by=0.5))
    learn.fit_one_cycle(2, 1e-2)
    assert first(learn) == 6 and len(learn.growth.history) == 1
    for n in (1, 2):  # at=[1] is beyond a 1-epoch fit; a 2-epoch fit would grow again
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter('always')
            learn.fit_one_cycle(n, 1e-2)
        said = [x for x in w if 'schedule ran in an earlier fit' in str(x.message)]
        assert len(said) == (1 if n == 1 else 0)
    assert first(learn) == 6 and len(learn.growth.history) == 1
    assert len(learn.growth.log) == 5  # every epoch of the three fits, in order
    assert learn.recorder.metric_names[-3:] == ['params', 'mean_cos', 'time']


class Boom(Callback):
    order = 95
    def __init__(self, exc, at): self.exc, self.at = exc, at
    def after_batch(self):
        if self.training and self.learn.train_iter == self.at: raise self.exc


@pytest.mark.parametrize('exc', [KeyboardInterrupt(), RuntimeError('boom')])
def test_a_fit_stopped_by_an_error_leaves_no_stale_columns_and_the_schedule_continues(dls, exc):
    learn = learner(dls, GrowthCallback(at=[1, 2], by=0.5))
    n = len(learn.dls.train)
    learn.add_cb(Boom(exc, n + 1))  # stops in epoch 1, after its growth
    with pytest.raises(type(exc)): learn.fit(3, 1e-2)
    learn.remove_cb(Boom)
    assert first(learn) == 6
    learn.fit(3, 1e-2)  # resumes the schedule: epoch 1 has passed, epoch 2 has not
    assert [e['epoch'] for e in learn.growth.history] == [1, 2] and first(learn) == 9
    names = learn.recorder.metric_names
    assert names.count('params') == 1 and names.count('mean_cos') == 1


def test_growth_interrupted_between_groups_leaves_a_trainable_model(dls):
    calls = []
    def slow_strategy(ctx, k):
        calls.append(ctx.group.producer)
        if len(calls) == 3: raise KeyboardInterrupt
        from gdnn_nb.grow import random_strategy
        return random_strategy(ctx, k)
    learn = learner(dls, GrowthCallback(at=[1], by=0.5, strategy=slow_strategy))
    with pytest.raises(KeyboardInterrupt): learn.fit(2, 1e-2)
    assert 4 < sum(widths(learn.model).values()) / len(widths(learn.model))  # some groups grew
    learn.fit(1, 1e-2)  # the optimiser state fits every parameter


def test_validate_get_preds_and_lr_find_add_no_history_columns_or_snapshots(dls):
    learn = learner(dls, GrowthCallback(at=[0], by=0.5))
    learn.lr_find(num_it=10, show_plot=False)
    assert learn.growth.history == [] and first(learn) == 4
    learn.fit(1, 1e-2)
    snaps, log = len(learn.growth.snapshots), len(learn.growth.log)
    v = learn.validate()
    assert len(v) == 2  # loss and accuracy, no growth columns
    for _ in range(3): learn.get_preds()
    learn.lr_find(num_it=10, show_plot=False)
    assert (len(learn.growth.snapshots), len(learn.growth.log)) == (snaps, log)
    assert len(learn.growth.history) == 1 and first(learn) == 6
    learn.fit(1, 1e-2)  # a later fit replaces the end-of-training snapshot
    assert len(learn.growth.snapshots) == snaps


@pytest.mark.parametrize('every_epoch', [False, True])
def test_save_model_callback_reloads_a_best_model_of_another_width(dls, tmp_path, every_epoch):
    "The monitored value is the epoch, lowest best: the best model is epoch 0's, before growth"
    from fastai.learner import ValueMetric
    import numpy as np
    holder = []
    smc = SaveModelCallback(monitor='ep', comp=np.less, every_epoch=every_epoch, fname='m')
    learn = learner(dls, [GrowthCallback(at=[1], by=0.5), smc], tmp=tmp_path)
    learn.metrics = [ValueMetric(lambda: float(holder[0].epoch), 'ep')]
    holder.append(learn)
    learn.fit(3, 1e-2)
    if every_epoch:  # every epoch saved: nothing reloaded; each checkpoint loads at its width
        assert first(learn) == 6
        learn.load('m_0'); assert first(learn) == 4
        learn.load('m_2'); assert first(learn) == 6
    else:  # the best model, saved before growth, reloaded at the end of fit
        assert first(learn) == 4
    w = learn.model.features[0].weight
    assert learn.opt.state[w]['grad_avg'].shape == w.shape
    learn.fit(1, 1e-2)


def test_learn_load_takes_the_checkpoint_width_narrower_or_wider_with_the_optimiser(dls, tmp_path):
    learn = learner(dls, tmp=tmp_path)
    learn.fit(1, 1e-2); learn.save('small')
    learn.grow(0.5); learn.fit(1, 1e-2); learn.save('big')
    x = learn.dls.one_batch()[0]
    learn.model.eval(); want = learn.model(x)
    fresh = learner(dls, tmp=tmp_path)  # built small, no callback
    fresh.load('big')
    fresh.model.eval()
    torch.testing.assert_close(fresh.model(x), want)
    p = fresh.model.features[0].weight
    assert fresh.opt.state[p]['grad_avg'].shape == p.shape
    learn.load('small')  # narrower than the model now
    assert first(learn) == 4 and learn.opt.state[learn.model.features[0].weight]['grad_avg'].shape[0] == 4
    learn.fit(1, 1e-2)


def test_a_checkpoint_of_another_architecture_gets_one_line_and_changes_nothing(dls, tmp_path):
    other = learner(dls, model=vgg(13, 4), tmp=tmp_path); other.save('other')
    learn = learner(dls, tmp=tmp_path)
    before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    with pytest.raises(ValueError, match=r"load: '.*' is \(.*\) in the checkpoint but"):
        learn.load('other')
    after = learn.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


OPTS = {'SGD': SGD, 'Adam': Adam, 'RAdam': RAdam, 'Lamb': Lamb, 'QHAdam': QHAdam, 'ranger': ranger,
        'torch AdamW': lambda ps, lr: OptimWrapper(ps, torch.optim.AdamW, lr=lr)}


@pytest.mark.parametrize('name', list(OPTS))
def test_every_optimiser_keeps_its_state_across_growth(dls, name):
    learn = learner(dls, GrowthCallback(at=[0.5], by=0.5), opt_func=OPTS[name])
    learn.fit(2, 1e-3)
    assert first(learn) == 6
    opt = learn.opt
    state = opt.opt.state if name.startswith('torch') else opt.state
    for p in learn.model.parameters():
        for v in state.get(p, {}).values():
            if torch.is_tensor(v) and v.ndim: assert v.shape == p.shape
    if name == 'ranger':
        for pg, sg in zip(opt.param_lists, opt.slow_weights):
            for p, s in zip(pg, sg): assert s.shape == p.shape
    assert torch.isfinite(learn.recorder.losses[-1])


def test_a_users_optimiser_with_state_outside_opt_state_gets_one_line(dls):
    class Mine(torch.optim.SGD):
        def __init__(self, ps, lr):
            super().__init__(ps, lr=lr)
            self.extra = [torch.zeros_like(p) for g in self.param_groups for p in g['params']]
    net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    opt = Mine(net.parameters(), 0.1)
    with pytest.warns(GrowthWarning, match='keeps extra outside its per-parameter state'):
        resize_opt_state(opt, grow_model(net, 2))


def test_growth_keeps_channels_last_and_frozen_parameters(dls):
    learn = learner(dls, GrowthCallback(at=[1], by=0.5)).to_channelslast()
    learn.fit(2, 1e-2)
    assert first(learn) == 6
    for m in learn.model.modules():
        if isinstance(m, nn.Conv2d) and m.weight.shape[2] > 1:
            assert m.weight.is_contiguous(memory_format=torch.channels_last)
    learn = learner(dls)
    for p in learn.model.features.parameters(): p.requires_grad_(False)
    learn.grow(0.5)
    assert not any(p.requires_grad for p in learn.model.features.parameters())


def test_the_constraint_follows_gradient_accumulation(dls):
    "With 4 batches accumulated, loss and constraint are divided alike: their ratio is unchanged"
    seen = {}
    class Spy(Callback):
        order = 13  # right after ConstrainSimilarity's after_loss
        def __init__(self, key): self.key = key
        def after_loss(self):
            if self.training and self.learn.growth.last_sim is not None:
                c = self.learn.constrain_similarity.weight * self.learn.growth.last_sim
                seen.setdefault(self.key, (self.learn.loss_grad - self.learn.loss * self._scale()).item() / c.item())
        def _scale(self): return 1 / (4 * 64 / 64) if self.key == 'acc' else 1.
    for key, extra in (('plain', []), ('acc', [GradientAccumulation(n_acc=4 * 64)])):
        learn = learner(dls, [GrowthCallback(at=[0], by=0.5, pairs='all'), Spy(key)] + extra)
        learn.fit(1, 1e-2)
    assert seen['plain'] == pytest.approx(1.0, rel=2e-3)  # loss minus loss: float32 cancellation
    assert seen['acc'] == pytest.approx(0.25, rel=2e-3)


def test_tracker_callbacks_fine_tune_and_sgdr(dls, tmp_path):
    cbs = [GrowthCallback(at=[1], by=0.5), EarlyStoppingCallback(patience=5),
           ReduceLROnPlateau(patience=1), CSVLogger(fname=str(tmp_path/'log.csv'))]
    learn = learner(dls, cbs)
    learn.fit_sgdr(2, 1, 1e-2)  # 1 + 2 epochs
    assert first(learn) == 6
    assert (tmp_path/'log.csv').read_text().splitlines()[0].split(',')[-3:] == ['params', 'mean_cos', 'time']
    learn = learner(dls, GrowthCallback(at=[1], by=0.5))
    learn.fine_tune(2, 1e-2, freeze_epochs=1)
    assert [e['epoch'] for e in learn.growth.history] == [1] and first(learn) == 6


def test_freeze_and_unfreeze_with_a_splitter(dls):
    def splitter(m): return [list(m.features.parameters()), list(m.classifier.parameters())]
    learn = learner(dls, GrowthCallback(at=[1], by=0.5), splitter=splitter)
    learn.freeze()
    learn.fit(2, 1e-2)
    assert first(learn) == 6
    frozen = [p for p in learn.model.features.parameters() if p.ndim > 1]
    assert not any(p.requires_grad for p in frozen)
    learn.unfreeze(); learn.fit(1, 1e-2)


def test_mixup_with_firefly_fo(dls):
    learn = learner(dls, [MixUp(), GrowthCallback(at=[1], by=0.5, strategy='firefly-fo')])
    learn.fit(2, 1e-2)
    assert first(learn) == 6


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 2))
    def forward(self, x, z): return self.head(torch.cat([self.a(x), z], 1))


def test_a_model_with_two_inputs_grows(dls):
    from fastai.data.core import DataLoaders
    from fastai.data.load import DataLoader
    g = torch.Generator().manual_seed(0)
    ds = [(torch.randn(3, generator=g), torch.randn(2, generator=g), int(i % 2)) for i in range(128)]
    d = DataLoaders(DataLoader(ds, bs=32, shuffle=True), DataLoader(ds[:64], bs=32))
    d.n_inp = 2
    learn = learner(d, GrowthCallback(at=[1], by=0.5), model=TwoInputs())
    learn.fit(2, 1e-2)
    assert out_width(learn.model.a[0]) == 12 and out_width(learn.model.head[0]) == 24


def test_a_linear_over_sequences_is_skipped_with_its_reason_and_nothing_growable_warns(dls):
    seq = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6, 3))
    from gdnn_nb.grow import growth_check
    why = growth_check(seq, growable_groups(seq), torch.randn(2, 4, 5))
    assert why[0].startswith('growing it changes the output')
    import torchvision
    learn = learner(dls, GrowthCallback(at=[1]), model=torchvision.models.mobilenet_v3_small(num_classes=len(dls.vocab)))
    with pytest.warns(GrowthWarning, match='has no group that can grow'): learn.fit(2, 1e-2)
    assert learn.growth.history == []


def test_a_module_used_twice_is_left_out_with_its_reason():
    "One Linear object at two places of a Sequential: growing what feeds it, or it, breaks the other call"
    from gdnn_nb.grow import growth_check
    shared, relu = nn.Linear(8, 8), nn.ReLU()
    m = nn.Sequential(nn.Linear(4, 8), relu, shared, relu, shared, relu, nn.Linear(8, 8), relu, nn.Linear(8, 3))
    gs = growable_groups(m)
    why = dict(zip([g.producer for g in gs], growth_check(m, gs, torch.randn(2, 4))))
    assert why['0'] and why['2'], why  # both touch the shared layer: left out, with a reason
    assert why['6'] is None  # the group after it grows
    x = torch.randn(5, 4); m.eval(); y0 = m(x)
    grow_model(m, 1, 'random', layers=[g for g in gs if why[g.producer] is None])
    assert (m(x) - y0).abs().max() <= 1e-5
