"""Augmentation runs on training batches and never on validation ones, in every loader the library builds (from arrays, an
.npz, a folder, fastai's download, the shapes data), and a run records how many images it augmented."""
import numpy as np
import pytest
import torch
from PIL import Image

from gdnn_nb.data import augmenter, cifar_dls, shapes_dls, tensor_dls, CIFAR10_CLASSES
from gdnn_nb.train import train_run

RNG = np.random.default_rng(0)
X = RNG.integers(0, 256, (40, 3, 32, 32), dtype=np.uint8)
Y = np.arange(40) % 10


def check_augments_training_only(dls):
    "Two passes over the same training indices differ, image by image; validation batches repeat; the count follows"
    aug = augmenter(dls)
    assert aug is not None, "no CropPadFlip among the training transforms"
    ordered = dls.train.new(shuffle=False, drop_last=False)
    n0 = aug.n_images
    a, b = ordered.one_batch()[0], ordered.one_batch()[0]
    assert aug.n_images - n0 == len(a) + len(b)
    # an image keeps its crop and flip on both passes with probability 1/162
    assert (a != b).flatten(1).any(1).float().mean() > 0.8
    v1, v2 = dls.valid.one_batch()[0], dls.valid.one_batch()[0]
    assert torch.equal(v1, v2)
    for _ in dls.valid: pass
    assert aug.n_images - n0 == len(a) + len(b), "validation batches went through the augmentation"
    return a


def test_tensor_dls():
    dls = tensor_dls(torch.from_numpy(X), torch.from_numpy(Y), torch.from_numpy(X), torch.from_numpy(Y), CIFAR10_CLASSES,
                     bs=16, device='cpu')
    a = check_augments_training_only(dls)
    # with no padding and no flip the crop and flip is the identity: the rest of the pipeline is validation's
    aug = augmenter(dls)
    aug.pad = 0
    torch.manual_seed(0)
    b = dls.train.new(shuffle=False, drop_last=False).one_batch()[0]
    flipped = (b != dls.valid.one_batch()[0][:16]).flatten(1).any(1)
    assert torch.equal(b[flipped], dls.valid.one_batch()[0][:16][flipped].flip(3))
    assert 0 < flipped.sum() < 16


def test_unaugmented_loaders_repeat_their_training_batches():
    dls = tensor_dls(torch.from_numpy(X), torch.from_numpy(Y), torch.from_numpy(X), torch.from_numpy(Y), CIFAR10_CLASSES,
                     bs=16, device='cpu', augment=False)
    assert augmenter(dls) is None
    ordered = dls.train.new(shuffle=False, drop_last=False)
    assert torch.equal(ordered.one_batch()[0], ordered.one_batch()[0])


def test_shapes_dls():
    check_augments_training_only(shapes_dls(64, 16, bs=16, device='cpu'))


def test_cifar_dls_from_an_npz(tmp_path):
    np.savez(tmp_path/'d.npz', x_train=X, y_train=Y, x_test=X[:20], y_test=Y[:20])
    check_augments_training_only(cifar_dls(path=tmp_path/'d.npz', bs=16, device='cpu'))


def test_cifar_dls_from_a_folder(tmp_path):
    for part, n in (('train', 40), ('test', 20)):
        for i in range(n):
            f = tmp_path/part/CIFAR10_CLASSES[Y[i]]/f'{i}.png'
            f.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(X[i].transpose(1, 2, 0)).save(f)
    check_augments_training_only(cifar_dls(path=tmp_path, bs=16, device='cpu'))


def test_cifar_dls_from_fastais_download(fastai_cifar_home):
    check_augments_training_only(cifar_dls(bs=32, device='cpu'))


@pytest.mark.parametrize('augment', [True, False])
def test_a_run_records_the_images_it_augmented(augment):
    _, _, s = train_run(width=4, epochs=2, n_train=64, n_test=32, grow_at=[1], bs=16, device='cpu', progress=False,
                        augment=augment)
    assert s['settings']['augment'] is augment
    assert s['train_images'] == 2 * 64
    assert s['augmented_images'] == (s['train_images'] if augment else 0)
