"""The library's loaders are ordinary fastai DataLoaders for inference: get_preds, predict, tta, Interpretation, and
export/load_learner, before and after growth."""
import warnings

import numpy as np
import pytest
import torch
from fastai.interpret import ClassificationInterpretation
from fastai.learner import Learner, load_learner
from fastai.losses import CrossEntropyLossFlat
from fastai.metrics import accuracy
from PIL import Image

from gdnn_nb.callback import GrowthCallback
from gdnn_nb.data import shapes_dls
from gdnn_nb.models import vgg


@pytest.fixture(scope='module')
def learn(tmp_path_factory):
    dls = shapes_dls(128, 40, bs=32, device='cpu')
    learn = Learner(dls, vgg(11, 4, dls.c), loss_func=CrossEntropyLossFlat(), metrics=accuracy,
                    cbs=GrowthCallback(at=[1], by=0.5, sim_weight=0), path=tmp_path_factory.mktemp('learn'))
    with learn.no_bar(), learn.no_logging(): learn.fit(2, 1e-3)
    assert learn.growth.history, "the model did not grow"
    return learn


def test_get_preds_on_validation_and_training_data(learn):
    with learn.no_bar():
        p, t = learn.get_preds()
        p0, t0 = learn.get_preds(ds_idx=0)
    assert p.shape == (40, 10) and torch.equal(t, learn.dls.valid.y)
    assert p0.shape == (128, 10) and torch.equal(t0, learn.dls.train.y)
    assert torch.allclose(p.sum(1), torch.ones(40))


def test_predict_names_the_class_and_takes_images_as_users_hold_them(learn):
    x = learn.dls.valid.x[3]
    with learn.no_bar():
        name, i, probs = learn.predict(x)
        assert name == learn.dls.vocab[int(i)] and probs.shape == (10,)
        for same in (x.permute(1, 2, 0).numpy(), Image.fromarray(x.permute(1, 2, 0).numpy())):
            assert torch.allclose(learn.predict(same)[2], probs, atol=1e-6)
        # the model's own output for the validation batch
        p, _ = learn.get_preds()
    assert torch.allclose(probs, p[3], atol=1e-5)
    for bad, said in ((torch.zeros(3, 16, 16, dtype=torch.uint8), "a 3x16x16 torch.uint8 image"),
                      (torch.zeros(3, 32, 32), "a 3x32x32 torch.float32 image")):
        with pytest.raises(ValueError, match=f"test item 0: {said}; pass uint8 RGB images of 32x32"): learn.predict(bad)


def test_tta_and_interpretation(learn):
    with learn.no_bar():
        p, t = learn.tta(n=2)
        interp = ClassificationInterpretation.from_learner(learn)
    assert p.shape == (40, 10) and torch.equal(t, learn.dls.valid.y)
    cm = interp.confusion_matrix()
    assert cm.shape == (10, 10) and cm.sum() == 40


def test_export_and_load_learner_give_the_same_predictions(learn):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        learn.export('grown.pkl')
        loaded = load_learner(learn.path/'grown.pkl')
    imgs = list(learn.dls.valid.x[:6])
    with learn.no_bar(), loaded.no_bar():
        a, _ = learn.get_preds(dl=learn.dls.test_dl(imgs))
        b, _ = loaded.get_preds(dl=loaded.dls.test_dl(imgs))
        assert loaded.predict(imgs[0])[0] == learn.predict(imgs[0])[0]
    assert torch.allclose(a, b, atol=1e-6)
    assert len(loaded.dls.train.x) == 0 and list(loaded.dls.vocab) == list(learn.dls.vocab)  # the data are not exported


def test_show_batch_and_show_results_name_the_classes(learn):
    import matplotlib.pyplot as plt
    for show in (lambda: learn.dls.show_batch(max_n=4), lambda: learn.show_results(max_n=4)):
        plt.close('all')
        with learn.no_bar(): show()
        titles = [ax.get_title() for ax in plt.gcf().axes if ax.get_title()]
        assert titles and all(t.split('\n')[0] in learn.dls.vocab for t in titles), titles
    plt.close('all')
