"""What the prepared GPU check (`bench/gpu_check.sh`) needs carried to a lent GPU machine, which has no network.

Gathers, into two folders that git ignores (`.git/info/exclude`) and the device call's `carry` names:

- `.whl/`: a wheel for the machine's Python (3.12, Linux x86-64) of every package that gdnn_nb and the lesson runner
  (`tests/test_lessons.py`: nbclient, ipykernel, and nbdev for the lessons' `show_doc`) need and the machine's image
  lacks, at the version installed here (the versions this project tests). What they need is read from the installed
  packages' requirements; what the image holds, from the device tool's package list (`KINDS.md`);
- `.data/`: the CIFAR-10 subset.

Then it checks, offline, that every wheel installs on the machine's Python (its tags), that every requirement of every
carried wheel is met by a carried wheel or by a package of the image (by name: the image's list has no versions), and
that the call stays under the device call's limit (64 MiB with the repository). Run here, from the repository root:

    .venv/bin/python bench/gpu_wheels.py [--kinds ../.library/device/KINDS.md]

On the GPU machine, `bench/gpu_check.sh` runs it with `--installed` once the wheels are in: the versions the carried
wheels ask of the image's packages, checked against the versions there.
"""
import argparse, re, shutil, subprocess, sys, tempfile, zipfile
from email.parser import Parser
from importlib.metadata import PackageNotFoundError, distribution, version
from pathlib import Path
import tomllib

from packaging.requirements import Requirement
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ('nbclient', 'ipykernel', 'nbdev')  # tests/test_lessons.py's kernel runner, and the lessons' show_doc
# required by fastai but imported only by fastai.text, which no lesson imports; with its own 20 requirements
NOT_IMPORTED = {'spacy': 'fastai.text'}
# the machine: CPython 3.12, Linux x86-64 (device tool's KINDS.md)
MARKERS = dict(python_version='3.12', python_full_version='3.12.3', sys_platform='linux', platform_system='Linux',
               os_name='posix', platform_machine='x86_64', implementation_name='cpython',
               platform_python_implementation='CPython', extra='')
# the glibc of the machine's Ubuntu (Python 3.12.3): 2.39; pip matches each manylinux_2_N exactly
PLATFORMS = (*(f'manylinux_2_{n}_x86_64' for n in range(39, 4, -1)), 'manylinux2014_x86_64', 'manylinux2010_x86_64',
             'manylinux1_x86_64', 'linux_x86_64')
TAGS = {*cpython_tags((3, 12), platforms=PLATFORMS), *compatible_tags((3, 12), 'cp312', platforms=PLATFORMS)}
LIMIT = 64 * 2**20


def image_packages(kinds):
    "Names of the packages the GPU machines' image holds, as the device tool's KINDS.md lists them"
    text = Path(kinds).read_text().split('## Python packages already there', 1)[-1]
    m = re.search(r'Packages: (.*?)\.\s*$', text, re.M)
    if m is None: sys.exit(f"gpu_wheels: no package list in {kinds}; pass the device tool's KINDS.md with --kinds")
    return {canonicalize_name(n) for n in m.group(1).split(', ')}


def applies(r):
    "Whether requirement `r` holds on the GPU machine (no extras asked for)"
    return r.marker is None or r.marker.evaluate(MARKERS)


def needed(roots, image):
    "Name -> installed version of every package reachable from `roots` through requirements that the image lacks"
    out, seen, todo = {}, set(), list(roots)
    while todo:
        n = canonicalize_name(todo.pop())
        if n in seen or n in image or n in NOT_IMPORTED: continue
        seen.add(n)
        try: d = distribution(n)
        except PackageNotFoundError: sys.exit(f"gpu_wheels: {n} is not installed here; run `python3 tools/dev.py install` first")
        out[n] = d.version
        todo += [r.name for r in map(Requirement, d.requires or []) if applies(r)]
    return out


def download(name, version, dest):
    "A wheel of `name==version` for the machine's Python into `dest`; a package published only as source is built here"
    spec = f"{name}=={version}"
    cmd = [sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', '--only-binary=:all:', '--python-version', '3.12',
           '--implementation', 'cp', *[a for p in (*PLATFORMS[:-1], 'any') for a in ('--platform', p)], '-d', str(dest), spec]
    if subprocess.run(cmd, capture_output=True).returncode:
        r = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '-w', str(dest), spec], capture_output=True, text=True)
        if r.returncode: sys.exit(f"gpu_wheels: no wheel of {spec} for Python 3.12 on Linux: {r.stderr.strip().splitlines()[-1:]}")


def wheel_requires(path):
    "The requirements in wheel `path`'s METADATA"
    with zipfile.ZipFile(path) as z:
        meta = next(n for n in z.namelist() if n.endswith('.dist-info/METADATA'))
        return Parser().parsestr(z.read(meta).decode()).get_all('Requires-Dist') or []


def check(whl, image):
    ("Every wheel in `whl` for the machine's Python, and every requirement of every one met by one carried wheel or "
     "by the image: what is not, one line each")
    have, bad = {}, []
    for w in whl.glob('*.whl'):
        n, v, _, tags = parse_wheel_filename(w.name)
        if n in have: return [f"two wheels of {n}: {have[n]} and {v}; pip would stop the whole install"]
        have[n] = v
        if not tags & TAGS: bad.append(f"{w.name} is not for CPython 3.12 on Linux x86-64; pip would stop the whole install")
    for w in sorted(whl.glob('*.whl')):
        for r in map(Requirement, wheel_requires(w)):
            n = canonicalize_name(r.name)
            if not applies(r) or n in image or n in NOT_IMPORTED: continue
            if n not in have: bad.append(f"{w.name} needs {r}, which is neither carried nor in the image")
            elif not r.specifier.contains(have[n], prereleases=True): bad.append(f"{w.name} needs {r}, carried: {have[n]}")
    return bad


def installed(whl):
    ("On the GPU machine, once the wheels are in: each requirement of each carried wheel against the version installed, "
     "for this Python; 1 and a line each for those not met")
    bad = []
    for w in sorted(whl.glob('*.whl')):
        for r in map(Requirement, wheel_requires(w)):
            if r.marker is not None and not r.marker.evaluate({'extra': ''}): continue
            try: v = version(r.name)
            except PackageNotFoundError: v = None
            if v is None or not r.specifier.contains(v, prereleases=True):
                bad.append(f"check: {w.name.split('-')[0]} needs {r}; this machine has {v or 'none'}")
    print('\n'.join(bad) if bad else f"check: the {len(list(whl.glob('*.whl')))} carried wheels' requirements are met here")
    return 1 if bad else 0


def repo_bytes():
    "Bytes of the files the device call copies: tracked and untracked-not-ignored"
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=ROOT, capture_output=True, text=True).stdout
    return sum((ROOT/f).stat().st_size for f in files.split('\0') if f and (ROOT/f).is_file())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--kinds', default=str(ROOT.parent/'.library'/'device'/'KINDS.md'), help="the device tool's KINDS.md (the image's package list)")
    p.add_argument('--npz', default=None, help='the CIFAR-10 subset (default: as gdnn_nb.data finds it)')
    p.add_argument('--installed', action='store_true', help='on the GPU machine: check the installed versions, nothing else')
    a = p.parse_args()
    if a.installed: sys.exit(installed(ROOT/'.whl'))
    if not Path(a.kinds).is_file(): sys.exit(f"gpu_wheels: no {a.kinds}; pass the device tool's KINDS.md with --kinds")
    image = image_packages(a.kinds)
    deps = tomllib.loads((ROOT/'pyproject.toml').read_text())['project']['dependencies']
    want = needed([Requirement(d).name for d in deps] + list(RUNNER), image)

    exclude = ROOT/'.git'/'info'/'exclude'
    lines = exclude.read_text().splitlines() if exclude.exists() else []
    with exclude.open('a') as f:
        for d in ('/.whl/', '/.data/'):
            if d not in lines: f.write(d + '\n')
    whl = ROOT/'.whl'
    whl.mkdir(exist_ok=True)
    for w in whl.glob('*.whl'):  # one version of each, and nothing the list no longer names
        n, v, *_ = parse_wheel_filename(w.name)
        if want.get(n) != str(v): w.unlink()
    have = {parse_wheel_filename(w.name)[0] for w in whl.glob('*.whl')}
    with tempfile.TemporaryDirectory() as tmp:
        for n, v in sorted(want.items()):
            if n not in have: download(n, v, tmp)
        for w in Path(tmp).glob('*.whl'): shutil.move(str(w), whl/w.name)
    print(f"gpu_wheels: {len(want)} wheels in .whl ({sum(w.stat().st_size for w in whl.glob('*.whl'))/2**20:.1f} MiB); "
          f"left out: {', '.join(f'{k} (imported only by {v})' for k, v in NOT_IMPORTED.items())}")

    sys.path.insert(0, str(ROOT))
    from gdnn_nb.data import find_cifar_npz
    npz = Path(a.npz) if a.npz else find_cifar_npz()
    data = ROOT/'.data'
    data.mkdir(exist_ok=True)
    if npz is not None and Path(npz).is_file(): shutil.copy(npz, data/'cifar10_subset.npz')
    else: print("gpu_wheels: no CIFAR-10 subset here; the check will leave out the CIFAR benches and the lessons that need it")

    bad = check(whl, image)
    for b in bad: print(f"gpu_wheels: {b}")
    total = repo_bytes() + sum(f.stat().st_size for d in (whl, data) for f in d.rglob('*') if f.is_file())
    print(f"gpu_wheels: the device call carries {total/2**20:.1f} MiB with the repository (limit {LIMIT/2**20:.0f} MiB); "
          f"requirements {'all met' if not bad else f'{len(bad)} unmet'}")
    if bad or total > LIMIT: sys.exit(1)
    print('carry: [".whl", ".data"]')


if __name__ == '__main__': main()
