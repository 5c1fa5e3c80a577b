"""Set up on first use, then run the main job or the tests: README's two commands.

    python3 tools/dev.py train [gdnn-train options]   # main job
    python3 tools/dev.py test [pytest options]        # test: pytest -q tests (every lesson runs once among them)
    python3 tools/dev.py install                      # the set-up alone (the deploy workflow uses it)

Both first make sure the project is installed: they create `.venv` if it is missing and run
`pip install -e ".[dev]"` in it when pyproject.toml changed since the last install (a stamp in
`.venv` holds its hash), so a second run starts at once. A Python script rather than a Makefile:
Python 3.10 is the one thing a fresh machine needs here, while `make` is missing from many
(slim Docker images, Windows), and the same file runs on every system Python runs on.
"""
import hashlib, os, subprocess, sys, venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT/'.venv'
BIN = VENV/('Scripts' if os.name == 'nt' else 'bin')
STAMP = VENV/'.gdnn_nb-installed'


def wanted():
    "What the stamp must hold for the install to be current: pyproject.toml's hash"
    return hashlib.sha256((ROOT/'pyproject.toml').read_bytes()).hexdigest()


def exe(name):
    "Path of a command installed in the project's virtual environment"
    return str(BIN/(name + ('.exe' if os.name == 'nt' and name != 'python' else '')))


def run(*cmd):
    "Run `cmd` in the project root; stop with its exit status when it fails"
    print('+', ' '.join(cmd), flush=True)
    rc = subprocess.call(cmd, cwd=ROOT)
    if rc: sys.exit(rc)


def ensure_installed():
    "Create .venv and install the project with its dev extras, unless already done for this pyproject.toml"
    py = BIN/('python.exe' if os.name == 'nt' else 'python')
    if not py.exists():
        print(f"+ {Path(sys.executable).name} -m venv .venv", flush=True)
        venv.create(VENV, with_pip=True)
    if STAMP.exists() and STAMP.read_text().strip() == wanted() and Path(exe('gdnn-train')).exists(): return
    run(str(py), '-m', 'pip', 'install', '-e', '.[dev]')
    STAMP.write_text(wanted() + '\n')


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ('train', 'test', 'install'):
        sys.exit("usage: python3 tools/dev.py train|test|install [options]: 'train' runs gdnn-train, "
                 "'test' pytest (every lesson and the tests in tests/), 'install' only sets up .venv")
    ensure_installed()
    cmd, rest = argv[0], argv[1:]
    if cmd == 'train': run(exe('gdnn-train'), *rest)
    elif cmd == 'test': run(exe('pytest'), '-q', 'tests', *rest)


if __name__ == '__main__':
    main()
