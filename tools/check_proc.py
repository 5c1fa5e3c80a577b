"""Check that the docs show the outputs the notebooks store: compare `_proc/` with `nbs/`.

`nbdev-docs` renders the notebooks that `nbdev-proc-nbs` writes to `_proc/`. On the way, nbdev
re-runs some cells (in `IN_TEST` mode): `show_doc` and `#| export` cells, and every cell with an
import in it. A re-run cell shows its new outputs, not the stored ones: a figure, a table or a
number can change, or become an error. This compares the outputs of each code cell in
`_proc/**/*.ipynb` with the same cell (by id) in `nbs/`, and prints one line per difference.

    .venv/bin/nbdev-proc-nbs && .venv/bin/python tools/check_proc.py

`show_doc` cells are left out: nbdev regenerates them from the code on purpose (with a link to the
source). Memory addresses (`at 0x7f...`), widget model ids and ANSI colours do not count.
Exits with status 1 when an output differs or a notebook has no processed copy.
"""
import argparse, json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_ADDR, _ANSI = re.compile(r'0x[0-9a-fA-F]{6,}'), re.compile(r'\x1B(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])')
_SHOWDOC = re.compile(r'^show_doc', re.MULTILINE)


def _text(v): return ''.join(v) if isinstance(v, list) else v


def _linkify(md):
    "nbdev links backticked names in markdown outputs of `_proc/`; do the same to the stored ones"
    try:
        from nbdev.doclinks import NbdevLookup
        return NbdevLookup().linkify(md)
    except Exception: return md


def norm(o, linkify=False):
    "An output reduced to what a reader sees"
    t = o['output_type']
    if t == 'stream': return ('stream', o['name'], _ANSI.sub('', _text(o['text'])))
    if t == 'error': return ('error', o['ename'], _ANSI.sub('', o['evalue']))
    data = {}
    for mime, v in o.get('data', {}).items():
        v = _text(v) if isinstance(v, (str, list)) else {k: x for k, x in v.items() if k != 'model_id'}
        if isinstance(v, str):
            v = _ADDR.sub('0x…', v)
            if mime == 'text/markdown' and linkify: v = _linkify(v)
            if mime.startswith('image/'): v = v.replace('\n', '')
        data[mime] = v
    return ('data', data)


def describe(outs):
    "A short account of a cell's outputs, for a one-line message"
    if not outs: return 'no output'
    def one(n):
        if n[0] == 'stream': return f"{n[1]} {n[2].strip()[:50]!r}"
        if n[0] == 'error': return f"error {n[1]}: {n[2][:50]}"
        d = n[1]
        if any(m.startswith('image/') for m in d): return 'a figure'
        if 'application/vnd.jupyter.widget-view+json' in d: return 'a widget'
        for m in ('text/markdown', 'text/html', 'text/plain'):
            if m in d: return f"{m.split('/')[1]} {d[m].strip()[:50]!r}"
        return '/'.join(d)
    return '; '.join(one(n) for n in outs[:3]) + (f" (+{len(outs) - 3} more)" if len(outs) > 3 else '')


def first_line(src):
    "The first line of a cell that is not a directive"
    return next((l for l in _text(src).splitlines() if l.strip() and not l.startswith('#|')), '')[:60]


def nb_files(nbs):
    "Notebooks nbdev processes: it skips files and folders whose names start with '_' or '.'"
    return sorted(p for p in Path(nbs).rglob('*.ipynb')
                  if not any(part[0] in '_.' for part in p.relative_to(nbs).parts))


def diffs(proc=ROOT/'_proc', nbs=ROOT/'nbs', linkify=True):
    "One message per code cell whose outputs in `proc` differ from those stored in `nbs`"
    proc, nbs, out = Path(proc), Path(nbs), []
    for src_path in nb_files(nbs):
        rel = src_path.relative_to(nbs)
        if not (proc/rel).exists():
            out.append(f"nbs/{rel}: no processed copy in {proc.name}/ (run nbdev-proc-nbs)"); continue
        stored = {c.get('id'): c for c in json.loads(src_path.read_text())['cells'] if c['cell_type'] == 'code'}
        for c in json.loads((proc/rel).read_text())['cells']:
            s = stored.get(c.get('id'))
            if c['cell_type'] != 'code' or s is None or _SHOWDOC.search(_text(c['source'])): continue
            a = [norm(o, linkify) for o in s.get('outputs', [])]
            b = [norm(o) for o in c.get('outputs', [])]
            if a != b:
                out.append(f"nbs/{rel} cell {c['id']} ({first_line(s['source'])!r}): the docs show "
                           f"[{describe(b)}], the notebook stores [{describe(a)}]")
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--proc', default=str(ROOT/'_proc'), help='folder nbdev-proc-nbs wrote')
    p.add_argument('--nbs', default=str(ROOT/'nbs'), help='the notebooks')
    a = p.parse_args()
    if not Path(a.proc).is_dir(): sys.exit(f"check_proc: no folder {a.proc}; run .venv/bin/nbdev-proc-nbs first")
    found = diffs(a.proc, a.nbs)
    for m in found: print(m, flush=True)
    if found:
        sys.exit(f"check_proc: {len(found)} difference(s) between {Path(a.proc).name}/ and the notebooks; nbdev re-runs "
                 "cells with an import (in IN_TEST mode): put imports in cells of their own, then re-run the notebook")
    print(f"check_proc: the outputs in {Path(a.proc).name}/ match the notebooks")


if __name__ == '__main__':
    main()
