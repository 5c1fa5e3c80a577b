"Merging neurons (gdnn_nb.merge): the optimiser keeps the moments of the neurons that stay, and merging works inside fits"
import warnings

import numpy as np
import pytest, torch, torch.nn as nn, torch.nn.functional as F
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
from fastai.optimizer import Adam as FastAdam

from gdnn_nb.callback import GrowthCallback
from gdnn_nb.data import shapes_dls
from gdnn_nb.grow import grow_model, growable_groups, resize_opt_state
from gdnn_nb.merge import merge, merge_plan, merge_to, merge_to_widths, MergeCallback
from gdnn_nb.models import vgg, resnet, count_params, widths


@pytest.mark.parametrize('make', [lambda ps: torch.optim.Adam(ps, 1e-3), lambda ps: FastAdam(ps, 1e-3)],
                         ids=['torch Adam', 'fastai Adam'])
def test_the_neurons_that_stay_keep_their_optimiser_state(make):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    with torch.no_grad(): m[0].weight[5], m[0].bias[5] = 2 * m[0].weight[1], 2 * m[0].bias[1]
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    opt = make(m.parameters())
    F.cross_entropy(m(x), y).backward(); opt.step()
    state = opt.state
    before = {id(p): {k: v.clone() for k, v in state[p].items() if torch.is_tensor(v) and v.ndim} for p in m.parameters()}
    m.eval()
    plan = merge_plan(m, '0', 0.99)
    assert [(a, b) for a, b, _, _ in plan] == [(1, 5)]
    resize_opt_state(opt, merge(m, '0', plan=plan))
    keep = torch.tensor([i for i in range(8) if i != 1])
    for p, dim in ((m[0].weight, 0), (m[0].bias, 0), (m[1].weight, 0), (m[1].bias, 0), (m[3].weight, 1)):
        assert before[id(p)]
        for k, v in before[id(p)].items(): assert torch.equal(state[p][k], v.index_select(dim, keep)), (k, p.shape)
    m.train()
    F.cross_entropy(m(x), y).backward(); opt.step()  # trains on at the new shapes


def test_merge_to_reaches_its_target_on_a_resnet():
    torch.manual_seed(0)
    m = resnet(20, 8).eval()
    target = count_params(m)
    grow_model(m, 0.5, 'net2net')
    recs = merge_to(m, target)
    assert count_params(m) <= target and recs
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_a_fit_that_grows_and_merges_under_to_fp16():
    "On a GPU this is fp16 (tests/test_gpu.py); here fastai's MixedPrecision stands aside, and the fit must still run"
    torch.manual_seed(0)
    learn = Learner(shapes_dls(n_train=128, n_test=32, bs=32), vgg(11, 4), loss_func=CrossEntropyLossFlat(),
                    cbs=[GrowthCallback(at=[1], by=1.0), MergeCallback(at=[0.7], target_params=count_params(vgg(11, 6)))])
    learn.to_fp16()
    with warnings.catch_warnings(), learn.no_bar(), learn.no_logging():
        warnings.simplefilter('ignore')
        learn.fit(3, 1e-3)
    assert learn.merge.history and count_params(learn.model) <= count_params(vgg(11, 6))
    assert torch.isfinite(torch.stack(learn.recorder.losses[-3:])).all()


def test_bad_input_gets_one_line():
    with pytest.raises(ValueError, match="give one of target_params, target_widths and threshold"): MergeCallback(at=[1])
    with pytest.raises(ValueError, match="has no layer|no layer named|not a producer|no module"):
        merge(vgg(11, 4), 'features.99', 0.9)
    with pytest.raises(ValueError, match="MergeCallback: at=.*negative"): MergeCallback(at=[-1], threshold=0.9)
    with pytest.raises(ValueError, match=r"MergeCallback: threshold=1.5; use a cosine, between -1 and 1"):
        MergeCallback(at=[1], threshold=1.5)
    with pytest.raises(ValueError, match=r"MergeCallback: target_params=0"): MergeCallback(at=[1], target_params=0)
    assert MergeCallback(at=[1], target_params=np.int64(1000)).target_params == 1000  # any whole number
    with pytest.raises(ValueError, match="MergeCallback: at=None; pass the epochs"): MergeCallback(at=None, threshold=0.9)
    with pytest.raises(ValueError, match="MergeCallback: layers='features.0'; pass a list"):
        MergeCallback(at=[1], threshold=0.9, layers='features.0')
    with pytest.raises(ValueError, match="target_widths names its groups; give layers with target_params or threshold"):
        MergeCallback(at=[1], target_widths={'features.0': 2}, layers=['features.0'])
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.Conv2d(8, 8, 3, padding=1), nn.GroupNorm(4, 8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 3))
    with pytest.raises(ValueError, match="merge_to_widths: target_widths names 'conv9', which is no growable group's producer; the model's: 0, 3"):
        merge_to_widths(m, {'conv9': 2})
    with pytest.raises(ValueError, match="merge_to_widths: '3' feeds GroupNorm '4'"): merge_to_widths(m, {'0': 2, '3': 4})
    assert m[0].out_channels == 8  # nothing merged before the error
    merge_to_widths(m, {'0': np.int64(6)})  # any whole number
    assert m[0].out_channels == 6
    assert MergeCallback(at=[1], threshold=np.float32(0.9)).threshold == np.float32(0.9)


@pytest.mark.parametrize('kw, msg', [(dict(target_widths={'features.99': 2}), "MergeCallback: target_widths names 'features.99'"),
                                     (dict(target_widths={'features.0': 0}), r"MergeCallback: target_widths\['features.0'\]=0"),
                                     (dict(threshold=0.9, layers=['features.99']), "MergeCallback: layers: model has no layer 'features.99'"),
                                     (dict(target_params=100, at=[5]), "MergeCallback: at=.*epoch 5 is beyond this fit of 2 epochs")])
def test_a_merge_the_model_cannot_take_stops_the_fit_before_its_first_batch(kw, msg):
    "A name, width or point that cannot be merged is one line at the fit's start, not an error epochs later"
    learn = Learner(shapes_dls(n_train=64, n_test=32, bs=32), vgg(11, 4), loss_func=CrossEntropyLossFlat(),
                    cbs=MergeCallback(**({'at': [1]} | kw)))
    with learn.no_bar(), learn.no_logging(), pytest.raises(ValueError, match=msg) as e:
        learn.fit(2, 1e-3)
    assert str(e.value).splitlines()[-1].strip().startswith(msg.split()[0])  # one line, under fastai's naming the event
    assert learn.train_iter == 0


def test_training_flops_count_the_merge(tmp_path):
    "TrainFlops sees a merge as it sees a growth step: the FLOPs after it are at the merged widths"
    import sys
    from pathlib import Path
    from gdnn_nb.train import train_run
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]/'tools'))
    from recount_flops import recount
    _, _, s = train_run(width=4, epochs=4, strategy='similarity', target_width=10, grow_at=[1, 2], merge_at=[3],
                        merge_width=8, n_train=128, n_test=32, progress=False, device='cpu')
    assert s['params'] == count_params(vgg(11, 8))
    assert s['train_flops'] == recount(s)  # replayed from the schedule: the last epoch at width 8, not 10
