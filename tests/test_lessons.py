"""Every lesson runs once, top to bottom, as on a fresh Colab runtime: the test command's one run of each notebook.

Each lesson gets a fresh kernel in a copy of `nbs/` with no `../shared` beside it (and `GDNN_CIFAR_NPZ` naming a missing
file, so that the installed package cannot find the subset either), and IN_TEST set, as `nbdev-test` sets it; cells
flagged `#| slow` or `#| notest` (the project's `tst_flags`) and cells with `#| eval: false` are left out, as `nbdev-test`
leaves them out. CIFAR-10 comes the way a user's does, through fastai's `untar_data(URLs.CIFAR)`:

- where the subset is at hand (`../shared/data/cifar10_subset.npz`, or `GDNN_CIFAR_NPZ`), HOME and FASTAI_HOME point to a
  temporary folder where CIFAR-10 lies as fastai leaves it after a download (built from the subset by `make_cifar_home`:
  the user's code path minus the network), and the kernel's sockets are closed, so a lesson that needs any other
  download fails with the URL named instead of hanging;
- elsewhere (GitHub's runners), fastai downloads CIFAR-10 into the user's FASTAI_HOME, once, as on Colab.

Wall times go to `$GDNN_LESSON_TIMES` (JSON) when it is set, each as its lesson ends (with the error's last line when it
failed), so that a run cut short still says how far it got; `GDNN_LESSONS_ONLY=04_data,index` runs only the lessons named;
`GDNN_LESSON_KERNELS` kernels run at a time (default 2, this machine's cores; the GPU check runs 4), sharing the cores."""
import json, os, re, shutil, threading, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT, make_cifar_home

ONLY = os.environ.get('GDNN_LESSONS_ONLY')
NOTEBOOKS = sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb') if not ONLY or p.stem in ONLY.split(','))
NO_NETWORK = '''import socket
def _no_network(*args, **kwargs): raise ConnectionError(f"the lesson test has no network: {args[1:] or args}")
socket.socket.connect = socket.create_connection = socket.getaddrinfo = _no_network
del socket, _no_network'''
KERNELS = int(os.environ.get('GDNN_LESSON_KERNELS', 2))
SKIP = re.compile(r'^#\|\s*(slow|notest|eval:\s*false)\s*$', re.M)
TIMES, _LOCK = {}, threading.Lock()


@pytest.fixture(scope='module')
def colab(tmp_path_factory):
    "A copy of nbs/ (nothing beside it), and where the subset is at hand a HOME holding fastai's CIFAR-10 download layout"
    root = tmp_path_factory.mktemp('colab')
    shutil.copytree(ROOT/'nbs', root/'content'/'nbs', ignore=shutil.ignore_patterns('_proc', '.ipynb_checkpoints', 'runs'))
    home = root/'home'
    # the kernels share the machine's cores: with torch's default of a thread per core each, two kernels on two cores took
    # 4 times as long
    threads = str(max(1, (os.cpu_count() or KERNELS) // KERNELS))
    env = dict(IN_TEST='1', GDNN_CIFAR_NPZ=str(root/'no-subset.npz'), OMP_NUM_THREADS=threads)
    old = {k: os.environ.get(k) for k in ('HOME', 'FASTAI_HOME', *env)}
    os.environ.update(HOME=str(home), FASTAI_HOME=str(home/'.fastai'))
    offline = make_cifar_home(home) is not None
    if not offline:  # fastai's download into the user's own FASTAI_HOME, as on Colab
        for k in ('HOME', 'FASTAI_HOME'):
            if old[k] is None: os.environ.pop(k)
            else: os.environ[k] = old[k]
    try:
        os.environ.update(env)  # from here on, the subset is nowhere to be found
        yield root/'content'/'nbs', offline
    finally:
        for k, v in old.items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = v
        from fastai.data.external import fastai_cfg
        fastai_cfg.cache_clear()


def _last_line(err):
    "What an error says last (a failed cell's exception), short"
    lines = str(err).strip().splitlines()
    return lines[-1][:200] if lines else type(err).__name__


def _run(nbs, name, offline):
    "Run the lesson `name` from the copy `nbs` in a fresh kernel; returns (seconds, None) or (seconds, the error)"
    nb = nbformat.read(nbs/name, as_version=4)
    nb.cells = [c for c in nb.cells if not (c.cell_type == 'code' and SKIP.search(c.source))]
    if offline: nb.cells.insert(0, nbformat.v4.new_code_cell(NO_NETWORK))
    t0, err = time.perf_counter(), None
    try:  # the kernel inherits this process's environment (set by the fixture) and starts in the copy of nbs/
        NotebookClient(nb, timeout=1200, kernel_name='python3', resources={'metadata': {'path': str(nbs)}}).execute()
    except Exception as e: err = e
    seconds = round(time.perf_counter() - t0, 1)
    with _LOCK:
        TIMES[name] = seconds if err is None else f"{seconds} (failed: {_last_line(err)})"
        if os.environ.get('GDNN_LESSON_TIMES'):
            Path(os.environ['GDNN_LESSON_TIMES']).write_text(json.dumps(dict(sorted(TIMES.items())), indent=1))
    return seconds, err


@pytest.fixture(scope='module')
def ran(colab):
    "Every lesson run once, `KERNELS` kernels at a time (default: the machine's two cores); the slowest first"
    nbs, offline = colab
    order = sorted(NOTEBOOKS, key=lambda n: n not in ('03_callback.ipynb', '04c_compare.ipynb'))
    with ThreadPoolExecutor(KERNELS) as ex: return dict(zip(order, ex.map(lambda n: _run(nbs, n, offline), order)))


@pytest.mark.parametrize('name', NOTEBOOKS)
def test_lesson_runs_on_a_fresh_runtime(colab, ran, name):
    nbs, _ = colab
    assert not (nbs.parent/'shared').exists() and not (nbs.parent.parent/'shared').exists()
    seconds, err = ran[name]
    print(f"{name}: {seconds} s")
    if err is not None: raise err


def test_flagged_cells_are_left_out():
    "The runner leaves out what nbdev-test leaves out: the project's test flags and `eval: false`"
    from nbdev.config import get_config
    assert set(get_config().tst_flags.split()) == {'slow', 'notest'}
    assert SKIP.search('#| slow\nx = 1') and SKIP.search('#| eval: false\nx') and not SKIP.search('#| export\nx')
