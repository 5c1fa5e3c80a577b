"""Write README.md from nbs/index.ipynb without Quarto.

`nbdev-readme` renders README.md through Quarto, which cannot be installed everywhere. This script
does the same job for what index.ipynb holds (markdown, code and text outputs): cells marked
`#| hide` are left out, nbdev directives are stripped, and code cells become fenced blocks
followed by their text output; an image output appears as the file a `# README shows PATH.png` comment in its cell names. Run `python tools/make_readme.py` after editing index.ipynb;
`tests/test_readme.py` fails when README.md is out of date. Where Quarto is installed,
`nbdev-readme` gives the same content.
"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def _directives(src):
    return {l[3:].strip().split()[0] for l in src.splitlines() if l.startswith('#|') and l[3:].strip()}

def _from_root(md):
    "Relative image paths in `md` (written from nbs/) made relative to the project root, where README.md lives"
    return re.sub(r'(!\[[^\]]*\]\()(?!https?:|/)([^)]+\))', r'\1nbs/\2', md)

def _strip(src):
    return '\n'.join(l for l in src.splitlines() if not l.startswith('#|')).strip('\n')

def _text_outputs(cell):
    "Plain-text outputs (fenced later) and Markdown outputs (kept as Markdown) of a code cell"
    out, md = [], []
    for o in cell.get('outputs', []):
        data = o.get('data', {})
        if o['output_type'] == 'stream': out.append(''.join(o['text']))
        elif 'text/markdown' in data: md.append(''.join(data['text/markdown']))
        elif 'text/plain' in data and not {'image/png', 'text/html'} & set(data): out.append(''.join(data['text/plain']))
    return ''.join(out).rstrip('\n'), '\n\n'.join(md)

def render(nb_path=ROOT/'nbs'/'index.ipynb'):
    "The README.md text for the notebook at `nb_path`"
    nb, parts = json.loads(Path(nb_path).read_text()), []
    for cell in nb['cells']:
        src = ''.join(cell['source'])
        if {'hide', 'exporti'} & _directives(src): continue
        body = _strip(src)
        if cell['cell_type'] == 'markdown': parts.append(_from_root(body))
        elif cell['cell_type'] == 'code':
            if body and 'echo:' not in src: parts.append(f"```python\n{body}\n```")
            txt, md = _text_outputs(cell)
            if txt: parts.append(f"```\n{txt}\n```")
            if md: parts.append(_from_root(md))
            for path in re.findall(r'# README shows (\S+\.png)', src):  # an image output, as the file it comes from
                parts.append(_from_root(f"![{Path(path).stem}]({path})"))
    return '\n\n'.join(p for p in parts if p) + '\n'

if __name__ == '__main__':
    (ROOT/'README.md').write_text(render())
    print(f"wrote {ROOT/'README.md'}", file=sys.stderr)
