"""The library's shape, for the redesign's before/after: lines per module, the longest functions, the parameter count
of each public entry point, and lines per exported notebook cell.

    .venv/bin/python tools/layout_stats.py [--top 15]
"""
import argparse, ast, importlib, inspect, json, statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def modules():
    return sorted(p for p in (ROOT/'gdnn_nb').glob('*.py') if not p.name.startswith('_'))


def functions(path):
    "(qualified name, lines) of every function and method in `path`"
    tree = ast.parse(path.read_text())
    out = []
    def walk(node, prefix):
        for n in ast.iter_child_nodes(node):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((f"{path.stem}.{prefix}{n.name}", n.end_lineno - n.lineno + 1)); walk(n, f"{prefix}{n.name}.")
            elif isinstance(n, ast.ClassDef): walk(n, f"{prefix}{n.name}.")
    walk(tree, '')
    return out


def entry_points():
    "Parameter count of every public function and class in each module's `__all__`"
    res = {}
    for p in modules():
        m = importlib.import_module(f"gdnn_nb.{p.stem}")
        for name in getattr(m, '__all__', []):
            o = getattr(m, name)
            if inspect.isclass(o) or inspect.isfunction(o):
                try: res[f"{p.stem}.{name}"] = len(inspect.signature(o).parameters)
                except (TypeError, ValueError): pass
    return res


def exported_cells():
    "Lines of every exported cell of the notebooks"
    sizes = []
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        for c in json.loads(nb.read_text())['cells']:
            src = ''.join(c['source'])
            if c['cell_type'] == 'code' and src.lstrip().startswith('#| export'): sizes.append(len(src.splitlines()))
    return sizes


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--top', type=int, default=15, help='how many of the longest functions to list')
    a = ap.parse_args()
    print("lines per module:")
    for p in modules(): print(f"  {p.name:16} {len(p.read_text().splitlines()):5}")
    print(f"\nthe {a.top} longest functions:")
    fs = sorted((f for p in modules() for f in functions(p)), key=lambda f: -f[1])[:a.top]
    for n, l in fs: print(f"  {l:4}  {n}")
    print("\nparameters of each public entry point (most first):")
    for n, k in sorted(entry_points().items(), key=lambda x: -x[1]):
        if k >= 4: print(f"  {k:3}  {n}")
    s = exported_cells()
    print(f"\nexported cells: {len(s)}, lines per cell: median {statistics.median(s):g}, max {max(s)}")


if __name__ == '__main__': main()
