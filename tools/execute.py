"""Execute lessons in full mode (not IN_TEST) and store their outputs, as the docs site shows them.

nbdev renders the outputs stored in the notebooks; it does not run them. So a lesson is committed executed, top to
bottom, in a fresh kernel, from `nbs/` (the folder nbdev runs it from), with widget state stored for the explorers.
Then `nbdev-clean` strips metadata. Usage: `.venv/bin/python tools/execute.py nbs/03_callback.ipynb [...]`.
"""
import argparse, os, subprocess, sys, time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def execute(path, timeout=3600):
    "Run the notebook at `path` in a fresh kernel from its folder and write it back with its outputs; returns seconds"
    nb = nbformat.read(path, as_version=4)
    env = {k: v for k, v in os.environ.items() if k != 'IN_TEST'}
    t0 = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(Path(path).parent)}},
                            store_widget_state=True)
    old = os.environ.copy()
    os.environ.clear(); os.environ.update(env)  # the kernel inherits this process's environment
    try: client.execute()
    finally: os.environ.clear(); os.environ.update(old)
    nbformat.write(nb, path)
    return time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('notebooks', nargs='+', type=Path)
    p.add_argument('--timeout', type=int, default=3600, help='seconds a cell may run (default: 3600)')
    a = p.parse_args(argv)
    for nb in a.notebooks:
        if not nb.exists(): sys.exit(f"execute: no notebook at {nb}")
    for nb in a.notebooks:
        print(f"{nb}: {execute(nb, a.timeout):.0f} s", flush=True)
        subprocess.run([str(Path(sys.executable).parent/'nbdev-clean'), '--fname', str(nb)], check=True, cwd=ROOT)


if __name__ == '__main__': main()
