"""The docs preview (tools/preview.py), the check of `_proc/` against the notebooks (tools/check_proc.py)
and the runner of README's commands (tools/dev.py); in headless Chromium, every page of the preview."""
import json, sys
from pathlib import Path

import nbformat, pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'tools'))
import check_proc, dev, preview


def code(src, outputs=(), id='c1'):
    return nbformat.v4.new_code_cell(src, id=id, outputs=list(outputs))


def stream(text): return nbformat.v4.new_output('stream', name='stdout', text=text)
def png(): return nbformat.v4.new_output('display_data', data={'image/png': 'iVBORw0KGgo=', 'text/plain': '<Figure size 640x480 with 1 Axes>'})


def write_nb(path, cells, fm=None):
    nb = nbformat.v4.new_notebook()
    if fm: nb.cells.append(nbformat.v4.new_raw_cell('---\n' + fm + '\n---\n', id='fm'))
    nb.cells += cells
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def test_pandoc_links_and_divs_become_html():
    md = '[source](https://x.org/a.py#L3){target="_blank" style="float:right; font-size:smaller"}\n\n::: {.callout-note}\nhi\n:::'
    out = preview.pandoc_md(md)
    assert '<a href="https://x.org/a.py#L3" target="_blank" style="float:right; font-size:smaller">source</a>' in out
    assert '{target=' not in out and '<div class="callout-note" markdown="1">' in out and '</div>' in out


def test_directives_are_applied_as_quarto_does():
    nb = nbformat.v4.new_notebook(cells=[
        code('#| echo: false\n#| output: asis\nshow_doc(f)', [stream('doc')], 'a'),
        code('#| include: false\nsecret = 1', [stream('hidden')], 'b'),
        code('#| output: false\nx = 2\nx', [stream('2')], 'c'),
        code('plt.plot([1])', [png()], 'd')])
    shown = preview.as_shown(nb)
    assert [c.id for c in shown.cells] == ['a', 'c', 'd']
    assert shown.cells[0].metadata.tags == ['remove_input'] and shown.cells[0].source == 'show_doc(f)'
    assert shown.cells[1].outputs == [] and shown.cells[1].source == 'x = 2\nx'
    assert preview.image_outputs(shown) == 1


def test_headings_get_the_ids_quarto_gives_them():
    "pandoc's identifiers (its manual's examples), so that a link to a section on the site has a target in the preview"
    for text, ident in [('Heading identifiers in HTML', 'heading-identifiers-in-html'), ("Maître d'hôtel", 'maître-dhôtel'),
                        ('Dogs?--in my house?', 'dogs--in-my-house'), ('HTML, S5, or RTF?', 'html-s5-or-rtf'),
                        ('3. Applications', 'applications'), ('33', 'section'),
                        ('Paper scale: --preset paper', 'paper-scale---preset-paper')]:
        assert preview.pandoc_id(text) == ident
    page = preview.pandoc_ids('<h2 id="A-b">A b<a class="anchor-link" href="#A-b">¶</a></h2><h2 id="x">A b</h2>')
    assert 'id="a-b"' in page and 'href="#a-b"' in page and 'id="a-b-1"' in page


def test_sidebar_follows_quarto_yml():
    entries = [e for _, e in preview.sidebar(ROOT/'nbs')]
    assert entries[0] == 'index.ipynb' and entries[1:6] == ['00_similarity.ipynb', '00b_constraint.ipynb', '01_grow.ipynb', '01b_firefly.ipynb', '02_models.ipynb']
    assert set(entries) == {p.name for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith('_')}


def test_build_names_titles_and_embeds(tmp_path):
    nbs, proc = tmp_path/'nbs', tmp_path/'_proc'
    nbs.mkdir()
    (nbs/'_quarto.yml').write_text('website:\n  sidebar:\n    contents:\n      - index.ipynb\n      - section: Lessons\n        contents: [00_a.ipynb]\n')
    write_nb(proc/'index.ipynb', [nbformat.v4.new_markdown_cell('Hello ![pic](img/p.png)', id='m')], 'title: Home')
    write_nb(proc/'00_a.ipynb', [code('#| echo: false\nshow_doc(f)', [nbformat.v4.new_output(
        'display_data', data={'text/markdown': '[source](https://x.org/a.py){target="_blank"}\n\n### f'})]), code('plot()', [png()], 'p')],
        'title: Lesson A\ndescription: What A is\noutput-file: a.html')
    (proc/'img').mkdir(); (proc/'img'/'p.png').write_bytes(b'\x89PNG')
    pages = preview.build(tmp_path/'site', proc, nbs)
    assert [(p['file'], p['title'], p['section'], p['figures']) for p in pages] == [('index.html', 'Home', None, 0), ('a.html', 'Lesson A', 'Lessons', 1)]
    a = (tmp_path/'site'/'a.html').read_text()
    assert '<h1 class="title">Lesson A</h1>' in a and 'What A is' in a and '<title>Lesson A' in a
    assert '{target=' not in a and '<a href="https://x.org/a.py" target="_blank">source</a>' in a
    assert 'show_doc(f)' not in a and 'data:image/png;base64,iVBORw0KGgo=' in a
    assert a.index('href="index.html"') < a.index('href="a.html"') and '>Lessons<' in a
    assert (tmp_path/'site'/'img'/'p.png').exists() and not list((tmp_path/'site').glob('*.ipynb'))


def test_check_proc_finds_changed_outputs(tmp_path):
    nbs, proc = tmp_path/'nbs', tmp_path/'_proc'
    stored = [code('import torch\nx = 1\nprint(x)', [stream('1\n')], 'a'), code('show_doc(f)', [stream('old')], 'b'),
              code('obj', [nbformat.v4.new_output('execute_result', data={'text/plain': '<A at 0x7f00aa11bb22>'}, execution_count=3)], 'c')]
    write_nb(nbs/'00_x.ipynb', stored)
    write_nb(nbs/'_scratch.ipynb', stored)
    write_nb(proc/'00_x.ipynb', [code('import torch\nx = 1\nprint(x)', [stream('\x1b[0m1\n')], 'a'), code('show_doc(f)', [stream('new')], 'b'),
                                 code('obj', [nbformat.v4.new_output('execute_result', data={'text/plain': '<A at 0x55ffee0011aa>'}, execution_count=1)], 'c')], 'title: X')
    assert check_proc.diffs(proc, nbs, linkify=False) == []
    write_nb(proc/'00_x.ipynb', [code('import torch\nx = 1\nprint(x)', [stream('2\n')], 'a')])
    write_nb(nbs/'01_y.ipynb', [])
    assert check_proc.diffs(proc, nbs, linkify=False) == [
        "nbs/00_x.ipynb cell a ('import torch'): the docs show [stdout '2'], the notebook stores [stdout '1']",
        'nbs/01_y.ipynb: no processed copy in _proc/ (run nbdev-proc-nbs)']


def test_dev_installs_once_per_pyproject(tmp_path, monkeypatch):
    (tmp_path/'pyproject.toml').write_text('[project]\nname = "x"\n')
    venv = tmp_path/'.venv'
    for name in ('python', 'gdnn-train'): (venv/'bin').mkdir(parents=True, exist_ok=True); (venv/'bin'/name).write_text('')
    monkeypatch.setattr(dev, 'ROOT', tmp_path); monkeypatch.setattr(dev, 'VENV', venv)
    monkeypatch.setattr(dev, 'BIN', venv/'bin'); monkeypatch.setattr(dev, 'STAMP', venv/'.gdnn_nb-installed')
    calls = []
    monkeypatch.setattr(dev, 'run', lambda *cmd: calls.append(cmd))
    dev.ensure_installed(); dev.ensure_installed()
    assert calls == [(str(venv/'bin'/'python'), '-m', 'pip', 'install', '-e', '.[dev]')]
    (tmp_path/'pyproject.toml').write_text('[project]\nname = "x"\ndependencies = ["y"]\n')
    dev.ensure_installed()
    assert len(calls) == 2


def test_dev_refuses_unknown_commands(capsys):
    with pytest.raises(SystemExit, match='usage: python3 tools/dev.py train'): dev.main(['deploy'])


def expected_figures(nb_path):
    "Image outputs a processed notebook shows: in code cells not marked `include: false` or `output: false`"
    n = 0
    for c in json.loads(nb_path.read_text())['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] != 'code' or '#| include: false' in src or '#| output: false' in src: continue
        n += sum(any(m.startswith('image/') for m in o.get('data', {})) for o in c.get('outputs', []))
    return n


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "The preview, built the way a user builds it: nbdev-proc-nbs, then rendering _proc/"
    out = tmp_path_factory.mktemp('preview')/'_site_preview'
    preview.run_proc_nbs()
    return out, {p['entry']: p for p in preview.build(out)}


@pytest.mark.slow
@pytest.mark.parametrize('entry', [e for _, e in preview.sidebar(ROOT/'nbs')])
def test_every_page_in_chromium(site, entry, chrome, shots):
    from selenium.webdriver.common.by import By
    out, pages = site
    page = pages[entry]
    chrome.get((out/page['file']).as_uri())
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(chrome, 30).until(lambda d: d.execute_script('return document.readyState') == 'complete'
                                    and d.find_elements(By.CSS_SELECTOR, 'h1.title'))
    title = page['title'].replace('`', '')
    assert chrome.find_element(By.CSS_SELECTOR, 'h1.title').text == title and title in chrome.title
    links = [a.get_attribute('href').rsplit('/', 1)[-1] for a in chrome.find_elements(By.CSS_SELECTOR, '.gdnn-sidebar a')]
    assert links == [p['file'] for p in pages.values()], "the sidebar is not in nbs/_quarto.yml's order"
    imgs = chrome.find_elements(By.CSS_SELECTOR, '.jp-RenderedImage img')
    assert len(imgs) == expected_figures(ROOT/'_proc'/entry), f"{page['file']}: {len(imgs)} figures shown, the notebook stores {expected_figures(ROOT/'_proc'/entry)}"
    assert all(chrome.execute_script('return arguments[0].complete && arguments[0].naturalWidth > 0', i) for i in imgs), f"{page['file']}: a figure does not load"
    text = chrome.find_element(By.TAG_NAME, 'body').text
    assert 'Traceback' not in text, f"{page['file']} shows an error"
    assert '{target=' not in text, f"{page['file']} shows show_doc's link as raw text"
    chrome.save_screenshot(str(shots/f"preview-{page['file'][:-5]}.png"))


def local_targets(page_file, hrefs, out):
    "The links among `hrefs` (from the page `page_file` of the preview in `out`) to a page or anchor of the preview that is missing"
    missing = []
    for h in hrefs:
        if not h or h.startswith(('http://', 'https://', 'mailto:', 'javascript:')): continue
        path, _, anchor = h.partition('#')
        target = out/page_file if path in ('', page_file) else out/path.split('/')[-1]
        if not target.exists(): missing.append(h); continue
        if anchor and f'id="{anchor}"' not in target.read_text(): missing.append(h)
    return missing


@pytest.mark.slow
@pytest.mark.parametrize('entry', [e for _, e in preview.sidebar(ROOT/'nbs')])
def test_every_link_has_a_target_and_every_image_loads(site, entry, chrome):
    from selenium.webdriver.common.by import By
    out, pages = site
    page = pages[entry]
    chrome.get((out/page['file']).as_uri())
    hrefs = [a.get_attribute('href') for a in chrome.find_elements(By.CSS_SELECTOR, 'a[href]')]
    rel = [h.replace((out.as_uri() + '/'), '') if h.startswith(out.as_uri()) else h for h in hrefs]
    assert not local_targets(page['file'], rel, out), f"{page['file']}: links without a target: {local_targets(page['file'], rel, out)}"
    local = [i for i in chrome.find_elements(By.TAG_NAME, 'img') if not (i.get_attribute('src') or '').startswith('http')]
    broken = [i.get_attribute('src')[:80] for i in local
              if not chrome.execute_script('return arguments[0].complete && arguments[0].naturalWidth > 0', i)]
    assert not broken, f"{page['file']}: images that do not load: {broken}"


@pytest.mark.slow
def test_explorers_move_on_the_page_without_a_kernel(site, chrome, shots):
    "On the rendered page, every control of every explorer changes the frame it shows"
    from selenium.webdriver.common.by import By
    out, pages = site
    chrome.get((out/pages['07_widgets.ipynb']['file']).as_uri())
    explorers = chrome.find_elements(By.CSS_SELECTOR, '.gdnn-explorer')
    assert len(explorers) == 2, "the widgets page shows the similarity and the Grad-CAM explorer"
    for n, ex in enumerate(explorers):
        controls = ex.find_elements(By.CSS_SELECTOR, 'select, input[type=range]')
        assert controls, "an explorer without controls"
        for c in controls:
            img = ex.find_element(By.TAG_NAME, 'img')
            before = img.get_attribute('src')
            chrome.execute_script("""const c = arguments[0];
                if (c.tagName === 'SELECT') c.selectedIndex = (c.selectedIndex + 1) % c.options.length;
                else c.value = (Number(c.value) + 1) % (Number(c.max) + 1);
                c.dispatchEvent(new Event('input'));""", c)
            after = img.get_attribute('src')
            assert after.startswith('data:image/png') and after != before, f"explorer {n}: a control changed nothing"
            assert 'not drawn' not in ex.find_element(By.CSS_SELECTOR, '.gdnn-caption').text
        chrome.execute_script('arguments[0].scrollIntoView()', ex)
        chrome.save_screenshot(str(shots/f'preview-explorer-{n}.png'))
