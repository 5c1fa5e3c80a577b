"Bad data ends in one line before any training, in Python and on the command line; fastai's download path works offline and is cached"
import io, os, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest.mock import patch
from urllib.error import URLError

import numpy as np
import pytest
from PIL import Image

from gdnn_nb.data import cifar_dls, lesson_cifar_dls, read_folder, CIFAR10_CLASSES

GOOD = dict(x_train=np.zeros((4, 3, 32, 32), np.uint8), y_train=np.arange(4), x_test=np.zeros((2, 3, 32, 32), np.uint8), y_test=np.arange(2))


def savez(**arrays):
    "The bytes of an .npz holding `arrays`"
    buf = io.BytesIO(); np.savez(buf, **arrays); return buf.getvalue()


def npz(**kw):
    "The bytes of a good .npz with the arrays in `kw` changed"
    return savez(**{**GOOD, **kw})


def folder(p, odd=None, junk=None, no_test=False):
    "A data folder in fastai's layout with 10 classes, one more PNG of size `odd` or a junk file at `junk`, or no test images"
    for part in ('train',) if no_test else ('train', 'test'):
        for c in CIFAR10_CLASSES:
            (p/part/c).mkdir(parents=True)
            Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(p/part/c/'0.png')
    if no_test: (p/'test').mkdir()
    if odd: Image.fromarray(np.zeros((*odd, 3), np.uint8)).save(p/'train'/'cat'/'odd.png')
    if junk: (p/junk).write_bytes(b'not a png')
    return p


# name: (what to write, the part of the message after the file's name); bytes make a file, a function a folder
CASES = {
    'truncated': (npz()[:5000], "not a readable .npz (BadZipFile: File is not a zip file); the file is truncated or corrupt"),
    'corrupt': (np.random.default_rng(0).bytes(4096), "not an .npz (it is no zip archive)"),
    'empty': (b'', "the file is empty (0 bytes)"),
    'damaged': (npz()[:300] + b'\xff' * 300 + npz()[600:], "cannot read x_train (BadZipFile: Bad CRC-32"),
    'npy': (b'\x93NUMPY' + bytes(100), "a single .npy array, not an .npz"),
    'pickled': (npz(y_train=np.array([None] * 4)), "y_train holds Python objects (a pickled array), which are never loaded"),
    'missing': (savez(x_train=GOOD['x_train']), "missing array(s) y_train, x_test, y_test"),
    'wrong-shape': (npz(x_train=np.zeros((4, 32, 32, 3), np.uint8)), "x_train has shape (4, 32, 32, 3); expected (N, 3, H, W)"),
    'wrong-dtype': (npz(x_test=np.zeros((2, 3, 32, 32), np.float32)), "x_test has dtype float32; images must be uint8"),
    'label-dtype': (npz(y_train=np.arange(4.)), "y_train has dtype float64; labels must be integers 0..9"),
    'out-of-range': (npz(y_train=np.array([0, 1, 2, 10])), "y_train holds label 10, outside 0..9"),
    'negative-label': (npz(y_test=np.array([0, -1])), "y_test holds label -1, outside 0..9"),
    'non-finite': (npz(x_train=np.full((4, 3, 32, 32), np.nan, np.float32)), "x_train holds 12288 non-finite value(s) (NaN or inf)"),
    'non-finite-labels': (npz(y_test=np.array([0., np.inf])), "y_test holds 1 non-finite label(s) (NaN or inf)"),
    'label-count': (npz(y_test=np.arange(3)), "y_test has shape (3,) for 2 images; expected (2,)"),
    'zero-train': (npz(x_train=np.zeros((0, 3, 32, 32), np.uint8), y_train=np.arange(0)), "x_train holds no images"),
    'zero-test': (npz(x_test=np.zeros((0, 3, 32, 32), np.uint8), y_test=np.arange(0)), "x_test holds no images"),
    'small': (npz(x_train=np.zeros((4, 3, 16, 16), np.uint8)), "x_train holds 16x16 images (height x width); the models need 32x32"),
    'non-square': (npz(x_test=np.zeros((2, 3, 32, 24), np.uint8)), "x_test holds 32x24 images (height x width); the models need 32x32"),
    'folder-small-image': (lambda p: folder(p, odd=(16, 16)), "the image is 16x16 (height x width); the models need 32x32"),
    'folder-non-square-image': (lambda p: folder(p, odd=(32, 40)), "the image is 32x40 (height x width); the models need 32x32"),
    'folder-junk-image': (lambda p: folder(p, junk='test/dog/1.png'), "cannot read this image (UnidentifiedImageError"),
    'folder-zero-test': (lambda p: folder(p, no_test=True), "no images under test/"),
}
CLI_CASES = ['truncated', 'corrupt', 'empty', 'wrong-shape', 'wrong-dtype', 'out-of-range', 'non-finite', 'zero-train',
             'zero-test', 'small', 'folder-small-image']


def make(name, tmp_path):
    "The bad input `name` under `tmp_path`, and the file its message must name"
    what, msg = CASES[name]
    if callable(what):
        p = what(tmp_path/name)
        named = next(p.rglob('odd.png'), None) or next(p.rglob('1.png'), None) or p
    else: p = named = tmp_path/f'{name}.npz'; p.write_bytes(what)
    return p, f"{named}: {msg}"


@pytest.mark.parametrize('name', CASES)
def test_readers_end_in_one_line(name, tmp_path):
    p, want = make(name, tmp_path)
    with pytest.raises(ValueError) as e: cifar_dls(path=p, device='cpu')
    assert want in str(e.value) and '\n' not in str(e.value), str(e.value)
    assert 'allow_pickle' not in str(e.value)


def test_every_damage_to_an_npz_ends_in_one_line(tmp_path):
    "Cut short anywhere, or with a stretch of random bytes anywhere: a ValueError naming the file, never another exception"
    whole, rng, p = npz(), np.random.default_rng(0), tmp_path/'d.npz'
    cases = [whole[:n] for n in range(0, len(whole), 97)]
    for _ in range(300):
        w = bytearray(whole); i = int(rng.integers(len(w))); w[i:i + 16] = rng.bytes(len(w[i:i + 16])); cases.append(bytes(w))
    for c in cases:
        p.write_bytes(c)
        try: cifar_dls(path=p, device='cpu')
        except ValueError as e: assert str(e).startswith(f"{p}: ") and '\n' not in str(e), str(e)


def gdnn_train(*args, cwd, env=None):
    exe = Path(sys.executable).parent/'gdnn-train'
    cmd = [str(exe)] if exe.exists() else [sys.executable, '-c', 'from gdnn_nb.train import main; main()']
    return subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope='module')
def cli_runs(tmp_path_factory):
    "Every case of CLI_CASES through gdnn-train, as many at a time as there are cores: name -> (expected text, result)"
    root = tmp_path_factory.mktemp('cli')
    def one(name):
        p, want = make(name, root)
        return name, (want, gdnn_train('--data', str(p), '--epochs', '1', '--device', 'cpu', '--out', str(root/name/'runs'), cwd=root))
    with ThreadPoolExecutor(os.cpu_count() or 1) as ex: return dict(ex.map(one, CLI_CASES))


@pytest.mark.parametrize('name', CLI_CASES)
def test_command_line_ends_in_one_line(name, cli_runs):
    want, r = cli_runs[name]
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith('gdnn-train: error: ') and want in lines[0], r.stderr
    assert not list(Path(r.args[r.args.index('--out') + 1]).rglob('model.pth'))  # stopped before training


def test_offline_message_fits_python_and_the_command_line():
    with patch('fastai.data.external.untar_data', side_effect=URLError('[Errno -3] Temporary failure in name resolution')):
        with pytest.raises(ConnectionError) as e: cifar_dls()
    msg = str(e.value)
    assert msg.startswith("could not download cifar10 from https://s3.amazonaws.com/fast-ai-sample/cifar10.tgz (URLError: ")
    assert msg.endswith("path=... in Python, --data PATH with gdnn-train") and '\n' not in msg and 'pass path=' not in msg


def test_fixture_has_fastais_layout(fastai_cifar_home):
    from fastai.data.external import untar_data, URLs
    h = fastai_cifar_home
    assert untar_data(URLs.CIFAR) == h.path == h.fastai_home/'data'/'cifar10'  # found, not downloaded (sockets are closed)
    assert (h.fastai_home/'config.ini').exists() and h.archive == h.fastai_home/'archive'/'cifar10.tgz' and h.archive.exists()
    assert sorted(p.name for p in h.path.iterdir()) == ['labels.txt', 'test', 'train']
    assert (h.path/'labels.txt').read_text().split() == CIFAR10_CLASSES
    assert sorted(p.name for p in (h.path/'train').iterdir()) == CIFAR10_CLASSES
    assert all(f.name.endswith(f'_{f.parent.name}.png') for f in (h.path/'test').rglob('*.png'))
    assert (h.n_train, h.n_test) == (500, 100)


WHOLE = pytest.mark.skipif(not os.environ.get('GDNN_WHOLE_SUBSET'), reason="the whole subset takes 30 s: set GDNN_WHOLE_SUBSET=1")


@pytest.mark.parametrize('fastai_cifar_home', [(50, 10), pytest.param(None, marks=WHOLE)], indirect=True, ids=['50-a-class', 'whole-subset'])
def test_download_path_offline_and_cached(fastai_cifar_home):
    h, cache = fastai_cifar_home, fastai_cifar_home.path.with_name('cifar10_arrays.npz')
    t0 = time.perf_counter(); dls = cifar_dls(bs=32); t1 = time.perf_counter()
    # the second call reads the cache: decoding the folder again fails
    with patch('gdnn_nb.data.read_folder', side_effect=AssertionError('the folder was decoded again')):
        dls2 = cifar_dls(bs=32); t2 = time.perf_counter()
    first, second = t1 - t0, t2 - t1
    print(f"\ncifar_dls() on {h.n_train} + {h.n_test} PNGs: first call {first:.3f} s (decode, write the cache), second {second:.3f} s (cache)")
    assert dls.source == h.path and cache.exists()
    assert (len(dls.train.x), len(dls.valid.x), list(dls.vocab)) == (h.n_train, h.n_test, CIFAR10_CLASSES)
    assert str(dls.device).startswith('cuda') == __import__('torch').cuda.is_available()
    arrs, _ = read_folder(h.path)
    for k, dl in (('train', dls2.train), ('test', dls2.valid)):
        assert np.array_equal(dl.x.numpy(), arrs[f'x_{k}']) and np.array_equal(dl.y.numpy(), arrs[f'y_{k}'])


def test_lessons_download_when_there_is_no_subset(fastai_cifar_home, monkeypatch, tmp_path):
    "As on Colab: no subset, so `lesson_cifar_dls` takes fastai's download (here the fixture's, found in place)"
    monkeypatch.setenv('GDNN_CIFAR_NPZ', str(tmp_path/'absent.npz'))
    dls = lesson_cifar_dls(bs=16, device='cpu')
    assert dls.source == fastai_cifar_home.path and len(dls.train.x) == fastai_cifar_home.n_train
    monkeypatch.delenv('GDNN_CIFAR_NPZ')
    assert lesson_cifar_dls(bs=16, device='cpu').source.suffix == '.npz'  # the subset, when it is there


def test_command_line_walks_the_download_path(fastai_cifar_home, tmp_path):
    env = {**os.environ, 'HOME': str(fastai_cifar_home.home), 'FASTAI_HOME': str(fastai_cifar_home.fastai_home)}
    r = gdnn_train('--data', 'cifar10', '--epochs', '1', '--width', '4', '--n-train', '64', '--n-test', '32', '--device', 'cpu',
                   '--name', 'dl', cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path/'runs'/'dl'/'metrics.json').exists() and fastai_cifar_home.path.with_name('cifar10_arrays.npz').exists()
