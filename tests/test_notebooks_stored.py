"What the docs site shows: nbdev renders the outputs stored in the notebooks, so they must be real, whole and clean"
import json, re
from pathlib import Path

import pytest

NBS = Path(__file__).resolve().parents[1]/'nbs'
LESSONS = sorted(p for p in NBS.glob('[0-9]*.ipynb'))
NO_FIGURE = {'07_widgets': "its pictures are the explorers' widgets, stored as widget state, not as PNG outputs"}  # lesson -> why
MACHINE = re.compile(r'/work/|/root/|/home/|site-packages')


def outputs(nb):
    for c in json.loads(nb.read_text())['cells']:
        if c['cell_type'] == 'code':
            for o in c.get('outputs', []): yield c, o


def text(o):
    if o['output_type'] == 'stream': return ''.join(o['text'])
    if o['output_type'] == 'error': return '\n'.join(o.get('traceback', []))
    return '\n'.join(''.join(v) if isinstance(v, list) else str(v) for k, v in o.get('data', {}).items() if k.startswith('text/'))


@pytest.mark.parametrize('nb', LESSONS, ids=lambda p: p.stem)
def test_lesson_is_stored_executed(nb):
    outs = list(outputs(nb))
    assert outs, f"{nb.name} is stored without outputs: execute it in full mode (not IN_TEST) and save it"
    if nb.stem not in NO_FIGURE:
        assert any('image/png' in o.get('data', {}) for _, o in outs), f"{nb.name} stores no figure"


@pytest.mark.parametrize('nb', LESSONS + [NBS/'index.ipynb'], ids=lambda p: p.stem)
def test_stored_outputs_are_fit_for_a_reader(nb):
    for c, o in outputs(nb):
        src = ''.join(c['source'])[:60]
        assert o['output_type'] != 'error', f"{nb.name}: cell {src!r} stores an error"
        assert not (o['output_type'] == 'stream' and o.get('name') == 'stderr'), \
            f"{nb.name}: cell {src!r} stores stderr (a warning or log meant for developers): {text(o)[:200]!r}"
        t = text(o)
        assert not MACHINE.search(t), f"{nb.name}: cell {src!r} shows a machine path: {MACHINE.search(t).group()!r} in {t[:200]!r}"
        assert '0.00% [0/' not in t, f"{nb.name}: cell {src!r} stores a progress bar frozen at 0%"


@pytest.mark.parametrize('nb', LESSONS, ids=lambda p: p.stem)
def test_signatures_say_what_a_parameter_takes(nb):
    "A signature on the page names the type a parameter takes, not `NoneType` for one whose default is None"
    for c, o in outputs(nb):
        if 'show_doc' in ''.join(c['source']):
            m = re.search(r'\w+:NoneType=None', text(o))
            assert not m, f"{nb.name}: {''.join(c['source']).strip()!r} shows {m.group()!r}: annotate it (`x:int|None=None`) and execute the lesson again"
