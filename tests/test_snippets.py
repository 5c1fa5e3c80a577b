"""Every code block a reader may copy from a page (a fenced block in a lesson's text; README is index.ipynb's) runs as written.

Python blocks run on a user's download path (fastai's CIFAR-10 layout, no network), with one change: a long fit is shorter
(`SHORTER`). In shell blocks, every `gdnn-train` and `gdnn-compare` command is parsed by the command's own parser, and a
`gdnn-compare` command runs as `--dry-run` into a temporary folder (its runs take hours); any other command needs a comment
in its block that says why the tests do not run it (`# not run by the tests: ...`), which the page shows."""
import contextlib, io, json, re, shlex
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use('Agg')
ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r'```(\w*)\n(.*?)```', re.S)
OPT_OUT = '# not run by the tests:'
SHORTER = {'learn.fit_one_cycle(40, 1e-3)': 'learn.fit_one_cycle(16, 1e-3)',  # the growth points 5, 10, 15 stay inside
           'learn.fit_one_cycle(60, 3e-3)': 'learn.fit_one_cycle(31, 3e-3)'}  # 10, 20, 30 stay inside


def blocks():
    "(where, language, code) of every fenced block in the lessons' text and in README"
    out = []
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        for c in json.loads(nb.read_text())['cells']:
            if c['cell_type'] == 'markdown':
                out += [(f"{nb.name} {c.get('id')}", lang, code) for lang, code in FENCE.findall(''.join(c['source']))]
    return out  # README is index.ipynb's (tests/test_package.py), so its blocks are among these


PYTHON = [(w, c) for w, l, c in blocks() if l == 'python']
SHELL = [(w, c) for w, l, c in blocks() if l in ('sh', 'bash', 'shell')]


def test_every_block_is_python_or_shell():
    assert PYTHON and SHELL
    assert not [w for w, l, c in blocks() if l not in ('python', 'sh', 'bash', 'shell')]


@pytest.mark.parametrize('fastai_cifar_home', [(12, 2)], indirect=True)  # 120 training images: one batch an epoch
@pytest.mark.parametrize('where,code', PYTHON, ids=[w for w, _ in PYTHON])
def test_python_block_runs_as_written(where, code, fastai_cifar_home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # what a block saves (learn.save) goes there
    if OPT_OUT in code: pytest.skip(code.split(OPT_OUT)[1].splitlines()[0].strip())
    for a, b in SHORTER.items(): code = code.replace(a, b)
    ns = {'__name__': '__main__'}
    with contextlib.redirect_stdout(io.StringIO()): exec(compile(code, where, 'exec'), ns)
    if 'learn' in ns:
        learn = ns['learn']
        assert len(learn.growth.history) == 3, f"{where}: the block's fit did not grow at its three points"
        assert learn.dls.train.n == fastai_cifar_home.n_train  # the user's download, not a stand-in


def commands(code):
    "The commands of a shell block, continuation lines joined, comments dropped"
    code = re.sub(r'\\\n\s*', ' ', code)
    return [l.split(' #')[0].strip() for l in code.splitlines() if l.strip() and not l.strip().startswith('#')]


@pytest.mark.parametrize('where,code', SHELL, ids=[w for w, _ in SHELL])
def test_shell_block_runs_or_says_why_not(where, code, tmp_path, capsys):
    from gdnn_nb.train import train_parser
    from gdnn_nb.compare import compare_parser, main as compare_main
    for cmd in commands(code):
        args = shlex.split(cmd.replace('$(which gdnn-train)', 'gdnn-train'))
        tool = next((a for a in args if a in ('gdnn-train', 'gdnn-compare')), None)
        if tool is None:
            assert OPT_OUT in code, f"{where}: `{cmd}` is not run by the tests; say why in the block ({OPT_OUT} ...)"
            continue
        opts = args[args.index(tool) + 1:]
        if '--device' in opts and opts[opts.index('--device') + 1].startswith('cuda') and not torch.cuda.is_available():
            opts[opts.index('--device') + 1] = 'cpu'  # where runs would go: a dry run trains nothing
        (train_parser() if tool == 'gdnn-train' else compare_parser()).parse_args(opts)  # exits on an unknown option
        if tool == 'gdnn-compare':
            if '--out' in opts: opts[opts.index('--out') + 1] = str(tmp_path/'out')
            else: opts += ['--out', str(tmp_path/'out')]
            compare_main(opts + ['--dry-run'])
            assert 'to run' in capsys.readouterr().out
