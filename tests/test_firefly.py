"""Firefly as a growth arm: its candidate phase is counted in the run's training FLOPs, it grows the layers
unevenly from one budget, and it works at any growth point of a fit with data the loader makes (MixUp never reaches it)."""
import pytest
import torch
from fastai.callback.mixup import MixUp
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat

from gdnn_nb.callback import GrowthCallback
from gdnn_nb.data import shapes_dls
from gdnn_nb.models import vgg
from gdnn_nb.train import train_run

RUN = dict(width=4, target_width=8, epochs=3, n_train=128, n_test=32, grow_at=[1, 2], bs=32, device='cpu', progress=False, seed=0)


@pytest.fixture(scope='module')
def runs():
    return {s: train_run(strategy=s, **RUN) for s in ('random', 'firefly')}


def test_the_candidate_phase_counts_in_the_training_flops(runs):
    (rl, _, r), (fl, _, f) = runs['random'], runs['firefly']
    cand = [ev['candidate_flops'] for ev in fl.growth.history]
    assert len(cand) == 2 and all(c > 0 for c in cand)
    assert [ev['candidate_flops'] for ev in rl.growth.history] == [0, 0]
    # the same images trained; firefly's model differs in shape, so compare with what its own steps cost
    assert f['train_images'] == r['train_images']
    steps = f['train_flops'] - sum(cand)
    assert 0 < steps < 3 * f['flops_per_image'] * f['train_images']  # its steps, at widths up to the final one
    assert f['train_flops'] > r['train_flops']


def test_one_budget_spent_unevenly(runs):
    (rl, _, r), (fl, _, f) = runs['random'], runs['firefly']
    added = lambda learn: [sum(ev['widths_after'][g] - ev['widths_before'][g] for g in ev['widths_after'])
                           for ev in learn.growth.history]
    assert sum(added(fl)) == sum(added(rl))  # toward the same target: the same number of neurons in all
    assert sum(f['final_widths'].values()) == sum(r['final_widths'].values())
    ev = fl.growth.history[0]
    assert len({ev['widths_after'][g] - ev['widths_before'][g] for g in ev['widths_after']}) > 1
    info = ev['info']
    assert sum(i['splits'] + i['new'] for i in info.values()) == added(fl)[0]


def test_mid_epoch_inside_mixup_the_candidates_see_the_loaders_batches_and_the_unmixed_loss():
    torch.manual_seed(0)
    dls = shapes_dls(64, 16, bs=16, device='cpu')
    calls = []
    class Seen(CrossEntropyLossFlat):
        "Records each call's reduction: MixUp calls the loss with 'none' on the batches it mixes"
        def __call__(self, inp, targ, **kwargs):
            calls.append(self.reduction)
            return super().__call__(inp, targ, **kwargs)
    cb = GrowthCallback(at=[0.4], by=0.5, strategy='firefly', sim_weight=0, candidates=4)
    learn = Learner(dls, vgg(11, 4, dls.c), loss_func=Seen(), cbs=[cb, MixUp()])
    with learn.no_bar(), learn.no_logging(): learn.fit(2, 1e-3)
    ev = learn.growth.history[0]
    assert (ev['epoch'], ev['iter']) == (0, 3)  # mid-epoch, while MixUp's loss is the learner's
    # the plain loss: a pass to train the candidates and one to score them, and each validation batch
    assert calls.count('mean') == 2 * len(dls.train) + 2 * len(dls.valid)
    assert calls.count('none') == 2 * 2 * len(dls.train)  # MixUp's training batches: two losses each, two epochs


def test_a_joint_strategy_keeps_max_width_and_refuses_groupnorm_in_any_group():
    import torch.nn as nn, torch.nn.functional as F
    from gdnn_nb.grow import grow_groups, growable_groups
    torch.manual_seed(0)
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 3, (8,))
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                        nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 3))
    opts = dict(batches=[(x, y)], loss_func=F.cross_entropy, candidates=4)
    recs = grow_groups(net, growable_groups(net), [10, 0], 'firefly', max_width=9, **opts)
    assert sum(r.after - r.before for r in recs) == 3 + 1 and [r.after for r in recs] == [9, 9]  # all the room there is
    gn = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                       nn.Conv2d(6, 8, 3, padding=1), nn.GroupNorm(4, 8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 3))
    with pytest.raises(ValueError, match="'4' is a GroupNorm of 4 groups"):
        grow_groups(gn, growable_groups(gn), [6, 0], 'firefly', **opts)
