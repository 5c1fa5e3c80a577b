"Shared fixtures: a headless Chromium driven by Selenium, and a folder for screenshots."
import os, shutil, socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOTS = Path(os.environ.get('GDNN_SCREENSHOTS', ROOT/'tests'/'screenshots'))
CHROMIUM, DRIVER = shutil.which('chromium') or '/usr/bin/chromium', shutil.which('chromedriver') or '/usr/bin/chromedriver'



def free_port():
    "A free TCP port on this machine, for a process group's rendezvous"
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def chrome(tmp_path):
    "Headless Chromium (Debian's package) under Selenium; skipped with a reason when it is not installed"
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.skip("needs Chromium and its driver: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
              '--disable-background-networking', '--disable-component-update', '--disable-sync', '--window-size=1400,2200',
              f'--user-data-dir={tmp_path/"chrome-profile"}'):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield drv
    drv.quit()


@pytest.fixture
def shots():
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


def make_cifar_home(home, per_class=(50, 10)):
    """Build CIFAR-10 from the subset under `home/.fastai`, exactly as fastai's `untar_data(URLs.CIFAR)` leaves it after a
    download (labels.txt, train/<class>/<i>_<class>.png, test/<class>/<i>_<class>.png, and the archive in archive/), for
    `per_class` (train, test) images a class, or the whole subset for None. HOME and FASTAI_HOME must already point there.
    Returns the namespace the fixture yields, or None when the subset is missing."""
    import tarfile, types
    import numpy as np
    from PIL import Image
    import fastai.data
    from fastai.data.external import fastai_cfg, URLs
    from fastcore.net import urldest
    from fastdownload import FastDownload
    from gdnn_nb.data import find_cifar_npz, CIFAR10_CLASSES
    npz = find_cifar_npz()
    if npz is None: return None
    fastai_cfg.cache_clear()  # fastai reads FASTAI_HOME once a process: make it read ours (this writes config.ini there)
    fd = FastDownload(fastai_cfg(), module=fastai.data, base='~/.fastai')  # the paths untar_data computes
    fd.arch_path().mkdir(parents=True)  # as FastDownload.get does before it names the archive
    arch = urldest(URLs.CIFAR, fd.arch_path())
    dest = fd.data_path('data', arch)
    with np.load(npz) as d:
        for part, n in zip(('train', 'test'), per_class or (None, None)):
            x, y = d[f'x_{part}'].transpose(0, 2, 3, 1), d[f'y_{part}']
            for c, name in enumerate(CIFAR10_CLASSES):
                (dest/part/name).mkdir(parents=True)
                for i in np.flatnonzero(y == c)[:n]:
                    Image.fromarray(x[i]).save(dest/part/name/f'{i}_{name}.png', compress_level=1)
    (dest/'labels.txt').write_text(''.join(f'{c}\n' for c in CIFAR10_CLASSES))
    with tarfile.open(arch, 'w:gz', compresslevel=1) as t: t.add(dest, arcname=dest.name)
    n = {p: sum(1 for _ in (dest/p).rglob('*.png')) for p in ('train', 'test')}
    return types.SimpleNamespace(home=home, fastai_home=home/'.fastai', path=dest, archive=arch, n_train=n['train'], n_test=n['test'])


@pytest.fixture
def fastai_cifar_home(tmp_path, monkeypatch, request):
    """CIFAR-10 from the subset, laid out exactly as fastai's `untar_data(URLs.CIFAR)` leaves it after a download, under a fresh
    HOME and FASTAI_HOME, with sockets closed: `cifar_dls()` then walks a user's download path with no network.

    fastai's `untar_data` returns `<FASTAI_HOME>/data/cifar10` without downloading when that folder exists (see
    `make_cifar_home`). By default 50 training and 10 test images a class (600 PNGs, a few seconds to build);
    `@pytest.mark.parametrize('fastai_cifar_home', [None], indirect=True)` takes the whole subset (6,102 PNGs), and
    `[(n_train, n_test)]` other numbers a class. Skipped when the subset is missing."""
    from fastai.data.external import fastai_cfg
    home = tmp_path/'home'
    monkeypatch.setenv('HOME', str(home))
    monkeypatch.setenv('FASTAI_HOME', str(home/'.fastai'))
    ns = make_cifar_home(home, getattr(request, 'param', (50, 10)))
    if ns is None: pytest.skip("needs the CIFAR-10 subset at ../shared/data/cifar10_subset.npz (or GDNN_CIFAR_NPZ)")

    def no_network(*args, **kwargs): raise AssertionError(f"a network call was attempted: {args[1:] or args}")
    monkeypatch.setattr(socket.socket, 'connect', no_network)
    monkeypatch.setattr(socket, 'create_connection', no_network)
    monkeypatch.setattr(socket, 'getaddrinfo', no_network)
    yield ns
    fastai_cfg.cache_clear()  # monkeypatch restores the environment next: fastai reads it again on its next call
