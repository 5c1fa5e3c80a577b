"""Build an offline preview of the docs site into _site_offline/, with nbconvert instead of Quarto.

Quarto (what `nbdev-docs` uses) cannot be installed everywhere. This executes every notebook of the
sidebar in nbs/_quarto.yml, in that order, keeping widget state, and exports each to HTML named as
nbdev names its pages (00_similarity.ipynb -> similarity.html), with nbdev's conventions: `#| hide`
cells left out and directives stripped. Every page gets the sidebar, and index.html (from
nbs/index.ipynb) is the entry point. The widget renderer and require.js are copied next to the pages
from the npm registry when `npm` is available, so that the explorers show with no internet; else
they load from their CDN.

    .venv/bin/python tools/offline_site.py [--test-mode] [--no-execute] [--out _site_offline]

--test-mode sets IN_TEST=1 in the kernels, as nbdev-test does: the notebooks shrink their work.
"""
import argparse, os, re, shutil, subprocess, time
from pathlib import Path

import nbformat, yaml
from nbclient import NotebookClient
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'
NPM_CACHE = Path(os.environ.get('XDG_CACHE_HOME', Path.home()/'.cache'))/'gdnn_nb'/'npm'


def sidebar(nbs=NBS):
    "Notebook file names in sidebar order, from nbs/_quarto.yml"
    cfg = yaml.safe_load((nbs/'_quarto.yml').read_text())
    out = []
    def walk(items):
        for it in items:
            if isinstance(it, str): out.append(it)
            elif isinstance(it, dict): walk(it.get('contents', []))
    walk(cfg['website']['sidebar']['contents'])
    return out


def page_name(nb_name):
    "nbdev's page name: numeric prefix dropped, .html"
    return 'index.html' if nb_name == 'index.ipynb' else re.sub(r'^\d+[a-zA-Z0-9]*_', '', nb_name).replace('.ipynb', '.html')


def strip_nbdev(nb):
    "Leave out `#| hide` and `#| default_exp` cells and strip directive lines, as nbdev's docs do"
    keep = []
    for c in nb.cells:
        directives = [l[3:].strip().split()[0] for l in c.source.splitlines() if l.startswith('#|') and l[3:].strip()]
        if c.cell_type == 'code' and {'hide', 'default_exp'} & set(directives): continue
        c.source = '\n'.join(l for l in c.source.splitlines() if not l.startswith('#|')).strip('\n')
        keep.append(c)
    nb.cells = keep
    return nb


def widget_js(static):
    "Copy the widget renderer and require.js into `static` from npm; (require_js_url, widget_renderer_url) relative to the pages, or None"
    if not shutil.which('npm'): return None
    mod = NPM_CACHE/'node_modules'
    if not (mod/'@jupyter-widgets'/'html-manager'/'dist'/'embed-amd.js').exists():
        NPM_CACHE.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(['npm', 'install', '--prefix', str(NPM_CACHE), '--no-audit', '--no-fund', '--silent',
                            '@jupyter-widgets/html-manager@1', 'requirejs@2'], capture_output=True, text=True, timeout=600)
        if r.returncode: print(f"npm could not fetch the widget renderer ({r.stderr.strip()[-200:]}); pages will load it from the CDN"); return None
    shutil.copytree(mod/'@jupyter-widgets'/'html-manager'/'dist', static/'html-manager', dirs_exist_ok=True)
    shutil.copy(mod/'requirejs'/'require.js', static/'require.js')
    return '_static/require.js', '_static/html-manager/embed-amd.js'


SIDEBAR_CSS = """<style>
.gdnn-sidebar{position:fixed;top:0;left:0;width:220px;height:100%;overflow:auto;padding:16px;background:#f7f7f9;border-right:1px solid #ddd;font:14px sans-serif}
.gdnn-sidebar a{display:block;padding:4px 0;color:#2a6ebb;text-decoration:none}.gdnn-sidebar a.current{font-weight:bold;color:#000}
body{margin-left:250px !important}</style>"""


def nav(pages, current):
    links = ''.join(f'<a href="{p}" class="{"current" if p == current else ""}">{t}</a>' for p, t in pages)
    return f'{SIDEBAR_CSS}<nav class="gdnn-sidebar"><b>gdnn_nb</b><br><small>offline preview</small><hr>{links}</nav>'


def title_of(nb, fallback):
    for c in nb.cells:
        if c.cell_type == 'markdown' and c.source.startswith('# '): return c.source.splitlines()[0][2:].strip()
    return fallback


def build(out, execute=True, test_mode=False, timeout=3600):
    out = Path(out)
    if out.exists(): shutil.rmtree(out)
    (out/'_static').mkdir(parents=True)
    urls = widget_js(out/'_static')
    exp = HTMLExporter(template_name='lab', exclude_input_prompt=True, exclude_output_prompt=True)
    if urls: exp.require_js_url, exp.widget_renderer_url = urls
    if test_mode: os.environ['IN_TEST'] = '1'
    names = sidebar()
    nbs = {n: nbformat.read(NBS/n, as_version=4) for n in names}
    pages = [(page_name(n), title_of(nb, n)) for n, nb in nbs.items()]
    for n, nb in nbs.items():
        t0 = time.perf_counter()
        if execute:
            NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(NBS)}}, store_widget_state=True).execute()
        body, _ = exp.from_notebook_node(strip_nbdev(nb), resources={'metadata': {'name': title_of(nb, n)}})
        body = re.sub(r'(<body[^>]*>)', lambda m: m.group(1) + nav(pages, page_name(n)), body, count=1)
        (out/page_name(n)).write_text(body)
        print(f"{n:25s} -> {page_name(n):20s} {time.perf_counter() - t0:6.1f} s", flush=True)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default=str(ROOT/'_site_offline'))
    p.add_argument('--no-execute', action='store_true', help='export the outputs stored in the notebooks instead of running them')
    p.add_argument('--test-mode', action='store_true', help='run the notebooks with IN_TEST=1 (small and quick), as nbdev-test does')
    p.add_argument('--timeout', type=int, default=3600, help='seconds per cell')
    a = p.parse_args()
    out = build(a.out, not a.no_execute, a.test_mode, a.timeout)
    print(f"open {out/'index.html'}")

if __name__ == '__main__':
    main()
