"""Preview the docs site without Quarto: the pages `nbdev-docs` would render, as HTML in _site_preview/.

`nbdev-docs` is `nbdev-proc-nbs` (which writes processed notebooks to `_proc/`: frontmatter from
the `# title`, `show_doc` cells added and run, `#| export` and `#| hide` cells dropped) followed by
`quarto render` of `_proc/`. Quarto cannot be installed everywhere, so this runs `nbdev-proc-nbs`
and renders `_proc/` with nbconvert instead, executing nothing: the outputs are those nbdev leaves
in `_proc/`, the ones the site shows. It follows what Quarto does with them: `#| echo: false` hides
the code and keeps the output, `#| output: false` the reverse, `#| include: false` both; the page is
named by `output-file`, titled by `title` and `description`; `show_doc`'s `[source](url){...}` links
become links; figures are embedded; every page gets the sidebar of nbs/_quarto.yml (or the
sidebar.yml that `nbdev-sidebar` writes), in its order. Files beside the notebooks (images that
markdown cells show) are copied along.

    .venv/bin/python tools/preview.py [--no-proc] [--out _site_preview] [--offline-widgets]

--no-proc renders the `_proc/` already there. Widgets load their renderer from a CDN, as on the
site; --offline-widgets copies it from the npm registry (cached) so the pages work with no internet.
"""
import argparse, html, os, re, shutil, subprocess, sys, tempfile, time
from pathlib import Path

import nbformat, yaml
from nbconvert import HTMLExporter
from traitlets.config import Config

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NPM_CACHE = Path(os.environ.get('XDG_CACHE_HOME', Path.home()/'.cache'))/'gdnn_nb'/'npm'
_DIRECTIVE = re.compile(r'^#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')
_PANDOC_LINK = re.compile(r'\[([^\]]*)\]\(([^)\s]+)\)\{([^}]*)\}')
_ATTR = re.compile(r'([\w-]+)=("[^"]*"|\S+)')
_CELL_KEYS = {'cell_type', 'id', 'metadata', 'source', 'outputs', 'execution_count', 'attachments'}
_FENCE_OPEN, _FENCE_CLOSE = re.compile(r'^:{3,}\s*\{([^}]*)\}\s*$'), re.compile(r'^:{3,}\s*$')


def run_proc_nbs():
    "Run `nbdev-proc-nbs` in the project root; with a stand-in `quarto` on PATH where there is none, which nbdev would try to install"
    with tempfile.TemporaryDirectory() as stub:
        if not shutil.which('quarto'):
            (Path(stub)/'quarto').write_text('#!/bin/sh\nexit 1\n'); (Path(stub)/'quarto').chmod(0o755)
        env = {**os.environ, 'PATH': f"{stub}{os.pathsep}{os.environ.get('PATH', '')}"}
        r = subprocess.run([str(BIN/'nbdev-proc-nbs')], cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{(r.stdout + r.stderr)[-3000:]}\npreview: nbdev-proc-nbs failed (above); nbdev-docs would fail the same way")
    n = r.stderr.count('Found cells containing imports and other code')
    if n: print(f"nbdev-proc-nbs warned about {n} cell(s) mixing imports and other code: nbdev re-ran them; "
                "tools/check_proc.py says whether their outputs changed")


def sidebar(nbs):
    "[(section or None, entry)] in the sidebar's order, from sidebar.yml when _quarto.yml uses one, else _quarto.yml"
    cfg = yaml.safe_load((nbs/'_quarto.yml').read_text())
    if 'sidebar.yml' in (cfg.get('metadata-files') or []) and (nbs/'sidebar.yml').exists():
        cfg = yaml.safe_load((nbs/'sidebar.yml').read_text())
    out = []
    def walk(items, section):
        for it in items:
            if isinstance(it, str): out.append((section, it))
            elif isinstance(it, dict) and 'contents' in it: walk(it['contents'], it.get('section', section))
            elif isinstance(it, dict) and 'href' in it: out.append((section, it['href']))
    walk(cfg['website']['sidebar']['contents'], None)
    return out


def frontmatter(nb):
    "The YAML front matter nbdev puts in the first raw cell ({} if none), and the notebook without it"
    if nb.cells and nb.cells[0].cell_type == 'raw' and nb.cells[0].source.lstrip().startswith('---'):
        fm = yaml.safe_load(nb.cells[0].source.strip().strip('-')) or {}
        nb.cells = nb.cells[1:]
        return fm
    return {}


def page_title(nb, fm, fallback):
    "Title as the site shows it: the front matter's, else the first `# ` heading"
    if fm.get('title'): return str(fm['title'])
    for c in nb.cells:
        if c.cell_type == 'markdown' and c.source.startswith('# '): return c.source.splitlines()[0][2:].strip()
    return fallback


def pandoc_md(md):
    "Markdown with Pandoc's `[text](url){attrs}` links and `::: {.class}` divs turned into HTML, as Quarto renders them"
    def link(m):
        attrs = ''.join(f' {k}="{html.escape(v.strip(chr(34)))}"' for k, v in _ATTR.findall(m.group(3)))
        return f'<a href="{html.escape(m.group(2))}"{attrs}>{m.group(1)}</a>'
    lines = []
    for l in _PANDOC_LINK.sub(link, md).splitlines():
        if (m := _FENCE_OPEN.match(l)):
            cls = ' '.join(x[1:] for x in m.group(1).split() if x.startswith('.'))
            lines += ['', f'<div class="{html.escape(cls)}" markdown="1">', '']
        elif _FENCE_CLOSE.match(l): lines += ['', '</div>', '']
        else: lines.append(l)
    return '\n'.join(lines)


def directives(src):
    "Quarto's `#| key: value` lines at the top of a cell, as a dict, and the source without them"
    d, lines = {}, src.splitlines()
    while lines and (m := _DIRECTIVE.match(lines[0])):
        d[m.group(1)] = m.group(2).strip('"\'').lower(); lines.pop(0)
    return d, '\n'.join(lines).strip('\n')


def as_shown(nb):
    "The cells as the site shows them: directives applied, Pandoc markdown turned into HTML"
    cells = []
    for c in nb.cells:
        for k in set(c) - _CELL_KEYS: del c[k]  # nbdev's marks (has_sd, execution times) are not nbformat
        c.metadata = nbformat.NotebookNode(tags=c.metadata.get('tags', []))
        if c.cell_type == 'markdown': c.source = pandoc_md(c.source)
        if c.cell_type != 'code': cells.append(c); continue
        d, c.source = directives(c.source)
        if d.get('include') == 'false': continue
        tags = set(c.metadata.get('tags', []))
        if d.get('echo') == 'false' or not c.source: tags.add('remove_input')
        if d.get('output') == 'false': c.outputs = []
        for o in c.outputs:
            if 'text/markdown' in o.get('data', {}): o.data['text/markdown'] = pandoc_md(o.data['text/markdown'])
        if 'remove_input' in tags and not c.outputs: continue
        c.metadata['tags'] = sorted(tags)
        cells.append(c)
    nb.cells = cells
    return nb


def image_outputs(nb):
    "Number of figures (image outputs) the site shows for `nb`, a notebook already passed through `as_shown`"
    return sum(any(m.startswith('image/') for m in o.get('data', {})) for c in nb.cells if c.cell_type == 'code' for o in c.outputs)


def widget_js(static):
    "Copy the widget renderer and require.js from npm into `static`; their URLs relative to the pages, or None"
    if not shutil.which('npm'): return print("preview: npm not found; widgets load their renderer from the CDN")
    mod = NPM_CACHE/'node_modules'
    if not (mod/'@jupyter-widgets'/'html-manager'/'dist'/'embed-amd.js').exists():
        NPM_CACHE.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(['npm', 'install', '--prefix', str(NPM_CACHE), '--no-audit', '--no-fund', '--silent',
                            '@jupyter-widgets/html-manager@1', 'requirejs@2'], capture_output=True, text=True, timeout=600)
        if r.returncode: return print(f"preview: npm could not fetch the widget renderer ({r.stderr.strip()[-200:]}); using the CDN")
    shutil.copytree(mod/'@jupyter-widgets'/'html-manager'/'dist', static/'html-manager', dirs_exist_ok=True)
    shutil.copy(mod/'requirejs'/'require.js', static/'require.js')
    return '_static/require.js', '_static/html-manager/embed-amd.js'


CSS = """<style>
.gdnn-sidebar{position:fixed;top:0;left:0;width:230px;height:100%;overflow:auto;padding:16px;box-sizing:border-box;
 background:#f7f7f9;border-right:1px solid #ddd;font:14px/1.4 sans-serif}
.gdnn-sidebar a{display:block;padding:3px 0 3px 8px;color:#2a6ebb;text-decoration:none}
.gdnn-sidebar a.current{font-weight:bold;color:#000}.gdnn-sidebar .section{margin:10px 0 2px;font-weight:bold;color:#555}
body{margin-left:250px !important}.gdnn-title{padding:0 20px}.gdnn-title p{color:#555;font-size:1.15em}
</style>"""


def inline(text):
    "Plain text with `code` spans as HTML, as Quarto shows titles"
    return re.sub(r'`([^`]+)`', r'<code>\1</code>', html.escape(str(text)))


def nav(pages, current, project):
    "The sidebar: links to every page, under their sections"
    out, last = [], None
    for p in pages:
        if p['section'] != last and p['section']: out.append(f'<div class="section">{html.escape(p["section"])}</div>')
        last = p['section']
        cls = ' class="current"' if p['file'] == current else ''
        out.append(f'<a href="{p["file"]}"{cls}>{inline(p["title"])}</a>')
    return f'{CSS}<nav class="gdnn-sidebar"><b>{html.escape(project)}</b><br><small>preview of the docs</small><hr>{"".join(out)}</nav>'


def pandoc_id(text):
    "The identifier pandoc (and so Quarto) gives a heading with this text"
    s = re.sub(r'[^\w\s.-]', '', text.strip().lower(), flags=re.UNICODE)
    s = re.sub(r'\s+', '-', s)
    s = re.sub(r'^[^a-z]+', '', s)
    return s or 'section'


def pandoc_ids(body):
    "Headings' ids and their anchor links as Quarto writes them, in place of nbconvert's"
    seen = {}
    def fix(m):
        level, old, inner = m.group(1), m.group(2), m.group(3)
        text = html.unescape(re.sub(r'<a class="anchor-link".*?</a>', '', re.sub(r'<(?!a class="anchor-link")[^>]+>', '', inner)))
        new = pandoc_id(re.sub(r'<[^>]+>', '', text))
        n = seen.get(new, 0); seen[new] = n + 1
        if n: new = f'{new}-{n}'
        return f'<h{level} id="{new}">' + inner.replace(f'href="#{old}"', f'href="#{new}"') + f'</h{level}>'
    return re.sub(r'<h([1-6]) id="([^"]*)">(.*?)</h\1>', fix, body, flags=re.S)


def build(out=ROOT/'_site_preview', proc=ROOT/'_proc', nbs=ROOT/'nbs', offline_widgets=False):
    "Render the notebooks of `proc` in `nbs`'s sidebar order to HTML pages in `out`; the pages as dicts"
    out, proc = Path(out), Path(proc)
    if not proc.is_dir(): sys.exit(f"preview: no folder {proc}; run .venv/bin/nbdev-proc-nbs first (or drop --no-proc)")
    if out.exists(): shutil.rmtree(out)
    shutil.copytree(proc, out, ignore=shutil.ignore_patterns('*.ipynb', '*.qmd', '*.yml', '.*'))
    (out/'_static').mkdir(exist_ok=True)
    c = Config()
    c.TagRemovePreprocessor.remove_input_tags = {'remove_input'}
    c.TagRemovePreprocessor.enabled = True
    exp = HTMLExporter(config=c, template_name='lab', exclude_input_prompt=True, exclude_output_prompt=True)
    if offline_widgets and (urls := widget_js(out/'_static')): exp.require_js_url, exp.widget_renderer_url = urls
    project = yaml.safe_load((Path(nbs)/'nbdev.yml').read_text()).get('website', {}).get('title', ROOT.name) \
        if (Path(nbs)/'nbdev.yml').exists() else ROOT.name
    pages = []
    for section, entry in sidebar(Path(nbs)):
        src = proc/entry
        if src.suffix != '.ipynb' or not src.exists():
            print(f"preview: sidebar entry {entry} has no processed notebook in {proc.name}/; left out"); continue
        nb = nbformat.read(src, as_version=4)
        fm = frontmatter(nb)
        name = fm.get('output-file') or Path(entry).with_suffix('.html').name
        pages.append(dict(section=section, entry=entry, file=name, title=page_title(nb, fm, Path(entry).stem),
                          description=fm.get('description', ''), nb=as_shown(nb)))
    for p in pages:
        t0 = time.perf_counter()
        head = f'<header class="gdnn-title"><h1 class="title">{inline(p["title"])}</h1>' + \
               (f'<p class="description">{inline(p["description"])}</p>' if p['description'] else '') + '</header>'
        name = f"{p['title'].replace('`', '')} – {project}"
        body, _ = exp.from_notebook_node(p['nb'], resources={'metadata': {'name': name}})
        body = pandoc_ids(re.sub(r'(<body[^>]*>)', lambda m: m.group(1) + nav(pages, p['file'], project) + head, body, count=1))
        (out/p['file']).write_text(body)
        p['figures'] = image_outputs(p['nb'])
        print(f"{p['entry']:25s} -> {p['file']:20s} {p['figures']:3d} figure(s) {time.perf_counter() - t0:5.1f} s", flush=True)
    return pages


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default=str(ROOT/'_site_preview'), help='folder for the HTML pages')
    p.add_argument('--no-proc', action='store_true', help='render the _proc/ already there instead of running nbdev-proc-nbs')
    p.add_argument('--offline-widgets', action='store_true', help='copy the widget renderer from npm instead of loading it from a CDN')
    a = p.parse_args()
    t0 = time.perf_counter()
    if not a.no_proc:
        run_proc_nbs()
        print(f"nbdev-proc-nbs: {time.perf_counter() - t0:.1f} s", flush=True)
    t1 = time.perf_counter()
    pages = build(a.out, offline_widgets=a.offline_widgets)
    print(f"{len(pages)} pages in {time.perf_counter() - t1:.1f} s; open {Path(a.out)/'index.html'}")


if __name__ == '__main__':
    main()
