"README's Python snippets run as written, on a user's download path (fastai's CIFAR-10 layout, no network); only the fit is shorter"
import re
from pathlib import Path

import matplotlib
import pytest

matplotlib.use('Agg')
README = (Path(__file__).resolve().parents[1]/'README.md').read_text()
SNIPPETS = re.findall(r'```python\n(.*?)```', README, re.S)


def _imports_only(code): return all(l.startswith(('import ', 'from ')) or not l.strip() for l in code.splitlines())


PROGRAMS, _pending = [], ''  # an imports-only snippet (the notebook keeps imports in cells of their own) runs with the next one
for _s in SNIPPETS:
    if _imports_only(_s): _pending += _s
    else: PROGRAMS.append((_pending, _s)); _pending = ''
SHORTER = {'learn.fit_one_cycle(40, 1e-3)': 'learn.fit_one_cycle(16, 1e-3)'}  # the growth points 5, 10, 15 stay inside the fit


def test_readme_has_python_snippets():
    assert len(PROGRAMS) >= 2


@pytest.mark.parametrize('fastai_cifar_home', [(12, 2)], indirect=True)  # 120 training images: one batch an epoch
@pytest.mark.parametrize('i', range(len(PROGRAMS)))
def test_readme_snippet_runs_as_written(i, fastai_cifar_home, capsys):
    imports, snippet = PROGRAMS[i]
    code = imports + snippet
    for a, b in SHORTER.items(): code = code.replace(a, b)
    ns = {}
    exec(compile(code, f'README snippet {i}', 'exec'), ns)
    if 'learn' in ns:
        learn = ns['learn']
        assert len(learn.growth.history) == 3 and learn.dls.train.n == fastai_cifar_home.n_train
    shown = re.search(r'```python\n' + re.escape(snippet) + r'```\n\n```\n(.*?)```', README, re.S)
    if shown:  # README shows what the snippet prints: the same kinds of numbers come out
        out = capsys.readouterr().out
        shape = lambda t: [re.sub(r'-?\d+(\.\d+)?(e-?\d+)?', 'N', l) for l in t.splitlines()]  # numbers differ with the draw
        assert shape(out) == shape(shown.group(1))
