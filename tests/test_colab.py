"""Every lesson runs top to bottom as on a fresh Colab runtime: a fresh kernel, a copy of `nbs/` with no `../shared` beside it
(and `GDNN_CIFAR_NPZ` naming a missing file, so that the installed package cannot find the subset either), HOME and
FASTAI_HOME in a temporary folder where CIFAR-10 lies as fastai's `untar_data(URLs.CIFAR)` leaves it after a download (built
from the subset by `make_cifar_home`: the user's code path minus the network), and IN_TEST set, as nbdev-test sets it.

Colab has internet; this machine has none, so the kernel's sockets are closed: a lesson that needs any other download fails
here with the URL named, instead of hanging. Wall times go to `$GDNN_COLAB_TIMES` (JSON) when it is set;
`GDNN_COLAB_ONLY=04_data,index` runs only the lessons named."""
import json, os, shutil, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT, make_cifar_home

NOTEBOOKS = sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb')
                   if not os.environ.get('GDNN_COLAB_ONLY') or p.stem in os.environ['GDNN_COLAB_ONLY'].split(','))
NO_NETWORK = '''import socket
def _no_network(*args, **kwargs): raise ConnectionError(f"the Colab-like test has no network: {args[1:] or args}")
socket.socket.connect = socket.create_connection = socket.getaddrinfo = _no_network
del socket, _no_network'''
TIMES = {}


@pytest.fixture(scope='module')
def colab(tmp_path_factory):
    "A copy of nbs/ (nothing beside it) and a HOME holding fastai's CIFAR-10 download layout, shared by the lessons in turn"
    root = tmp_path_factory.mktemp('colab')
    shutil.copytree(ROOT/'nbs', root/'content'/'nbs', ignore=shutil.ignore_patterns('_proc', '.ipynb_checkpoints', 'runs'))
    home = root/'home'
    # two kernels share the machine's two cores: with torch's default of a thread per core each, the test took 4 times as long
    env = dict(HOME=str(home), FASTAI_HOME=str(home/'.fastai'), IN_TEST='1', GDNN_CIFAR_NPZ=str(root/'no-subset.npz'),
               OMP_NUM_THREADS='1')
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(HOME=env['HOME'], FASTAI_HOME=env['FASTAI_HOME'])
    try:
        if make_cifar_home(home) is None: pytest.skip("needs the CIFAR-10 subset to build fastai's download layout")
        os.environ.update(env)  # from here on, the subset is nowhere to be found
        yield root/'content'/'nbs'
    finally:
        for k, v in old.items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = v
        from fastai.data.external import fastai_cfg
        fastai_cfg.cache_clear()
        if os.environ.get('GDNN_COLAB_TIMES'): Path(os.environ['GDNN_COLAB_TIMES']).write_text(json.dumps(TIMES, indent=1))


def _run(nbs, name):
    "Run the lesson `name` from the copy `nbs` in a fresh kernel; returns (seconds, None) or (seconds, the error)"
    nb = nbformat.read(nbs/name, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(NO_NETWORK))
    t0 = time.perf_counter()
    try:  # the kernel inherits this process's environment (set by the fixture) and starts in the copy of nbs/
        NotebookClient(nb, timeout=1200, kernel_name='python3', resources={'metadata': {'path': str(nbs)}}).execute()
        return round(time.perf_counter() - t0, 1), None
    except Exception as e: return round(time.perf_counter() - t0, 1), e


@pytest.fixture(scope='module')
def ran(colab):
    "Every lesson run once, two kernels at a time (the machine's two cores); the slowest first"
    order = sorted(NOTEBOOKS, key=lambda n: n != '03_callback.ipynb')
    with ThreadPoolExecutor(2) as ex: res = dict(zip(order, ex.map(lambda n: _run(colab, n), order)))
    TIMES.update({n: t for n, (t, _) in sorted(res.items())})
    return res


@pytest.mark.parametrize('name', NOTEBOOKS)
def test_lesson_runs_on_a_fresh_runtime(colab, ran, name):
    assert not (colab.parent/'shared').exists() and not (colab.parent.parent/'shared').exists()
    seconds, err = ran[name]
    print(f"{name}: {seconds} s")
    if err is not None: raise err
