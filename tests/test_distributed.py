"""Growth inside fastai's distributed training: two processes on the CPU (gloo, started by torchrun) grow a VGG-11 and a
ResNet-20 with every strategy, mid-epoch and at an epoch start, and stay bitwise identical; see tests/ddp_worker.py."""
import json, subprocess, sys
from pathlib import Path

import pytest
import torch.nn as nn

WORKER = Path(__file__).with_name('ddp_worker.py')
STRATEGIES = ['similarity', 'random', 'net2net', 'firefly']


@pytest.fixture(scope='module')
def ddp(tmp_path_factory):
    "What rank 0 of the 2-process run saw (1 to 1.5 minutes on 2 busy CPU cores)"
    out = tmp_path_factory.mktemp('ddp')/'ddp.json'
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', str(WORKER), str(out)]
    # no retry: a rank's gloo worker threads could free a collective's tensors after the interpreter began to shut down,
    # which aborts (SIGABRT); gdnn_nb.distributed waits for them at exit. bench/ddp_repeat.py counts aborts with and
    # without that wait, and runs this check N times in a row (--worker)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(out.read_text())


def fits(ddp): return [r for r in ddp['runs'] if 'checks' in r]


def test_every_model_and_strategy_trained_on_two_ranks(ddp):
    assert ddp['world_size'] == 2
    assert sorted((r['arch'], r['strategy']) for r in fits(ddp)) == sorted((a, s) for a in ('vgg11', 'resnet20') for s in STRATEGIES)
    for r in fits(ddp): assert r['ddp'], f"{r['arch']} {r['strategy']}: the model was not wrapped in DDP at every epoch start"


def test_grows_mid_epoch_and_at_an_epoch_start(ddp):
    for r in fits(ddp):
        assert r['growths'] == 2, r
        (mid, start) = [c['at'] for c in r['checks']]
        assert mid.startswith('epoch 0 batch ') and mid != 'epoch 0 batch 0', mid
        assert start == 'epoch 1 batch 0', start
        assert r['widths'][1]['features.0' if r['arch'] == 'vgg11' else 'layer1.0.conv1'] > r['widths'][0]['features.0' if r['arch'] == 'vgg11' else 'layer1.0.conv1']


def test_replicas_bitwise_equal_after_each_growth_and_at_the_end(ddp):
    for r in ddp['runs']:
        for c in r.get('checks', []): assert c['mismatches'] == [], f"{r['arch']} {r['strategy']} after growth at {c['at']}: {c['mismatches'][:5]}"
        assert r['end'] == [], f"{r['arch']} {r['strategy']} at the end: {r['end'][:5]}"


def test_each_rank_augments_its_training_images(ddp):
    for r in fits(ddp):
        # firefly also reads training batches for its candidates
        if r['strategy'] == 'firefly': assert r['augmented_images'] > r['trained_images'] > 0, r
        else: assert r['augmented_images'] == r['trained_images'] > 0, f"{r['arch']} {r['strategy']}: {r}"


def test_training_loss_falls(ddp):
    for r in ddp['runs']: assert r['epoch_loss'][-1] < r['epoch_loss'][0], f"{r['arch']} {r['strategy']}: {r['epoch_loss']}"


def test_merging_keeps_replicas_identical(ddp):
    "Grown at 30% of the first epoch, merged back at the start of the second, or in its middle: identical ranks"
    assert [m['at'] for m in ddp['merges']] == [[1], [0.75]]
    (start,), (mid,) = [m['merges'] for m in ddp['merges']]
    assert start == [1, 0] and mid[0] == 1 and mid[1] > 0
    for m in ddp['merges']: assert m['grew'] == 1 and m['widths_back'] and m['end'] == [], m


def test_growth_between_fits(ddp):
    (r,) = [r for r in ddp['runs'] if 'between fits' in r['strategy']]
    assert r['end'] == []


def test_sync_batchnorm_counts_as_a_norm_layer():
    "fastai's distrib_ctx converts BatchNorm2d to SyncBatchNorm by default; growth must still widen it with its producer"
    from gdnn_nb.grow import growable_groups
    from gdnn_nb.models import vgg
    m = nn.SyncBatchNorm.convert_sync_batchnorm(vgg(11, 4))
    gs = growable_groups(m)
    assert gs and all(g.norm is not None for g in gs), "growable_groups does not see SyncBatchNorm as a norm: add nn.SyncBatchNorm to NORMS"


def test_ddp_wrapped_by_hand_gets_a_new_wrapper_after_growth():
    """A model the user wrapped in DDP without fastai's distrib_ctx (one process, gloo): the old wrapper's gradient
    hooks sit on the parameters growth replaced, so growth mid-epoch must wrap the grown module again"""
    import torch, torch.distributed as dist
    from fastai.learner import Learner
    from fastai.losses import CrossEntropyLossFlat
    import fastai.callback.schedule  # fit_one_cycle
    from gdnn_nb.callback import GrowthCallback
    from gdnn_nb.data import shapes_dls
    from gdnn_nb.models import vgg, widths
    dist.init_process_group('gloo', store=dist.HashStore(), rank=0, world_size=1)  # one process: no port to find
    try:
        torch.manual_seed(0)
        dls = shapes_dls(n_train=128, n_test=32, bs=32, device='cpu')
        first = nn.parallel.DistributedDataParallel(vgg(11, 4))
        learn = Learner(dls, first, loss_func=CrossEntropyLossFlat(), cbs=GrowthCallback(at=[0.3, 0.6], by=0.5))
        with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(3, 1e-2)
        assert isinstance(learn.model, nn.parallel.DistributedDataParallel) and learn.model is not first
        assert len(learn.growth.history) == 2 and widths(learn.model.module)['features.0'] == 9
        assert torch.isfinite(torch.stack(learn.recorder.losses)).all() and len(learn.recorder.losses) == 12
    finally: dist.destroy_process_group()
