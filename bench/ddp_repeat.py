"""How often a 2-process CPU (gloo) run aborts as it exits (SIGABRT, 'terminate called without an active exception'),
with gdnn_nb's exit handler and without it, the modes interleaved in one run (these machines are noisy).

    .venv/bin/python bench/ddp_repeat.py [N] [--worker] [--busy]

N: runs of each mode (default 30) of bench/ddp_exit.py: 'handler' (gdnn_nb.distributed.leave_process_group), 'destroy'
(only destroy_process_group at exit) and 'none' (no exit handler). --worker: N runs of the distributed growth check
itself (tests/ddp_worker.py, all fits, about 20 s each), with the handler, no retry. --busy: a busy loop on every core
meanwhile, as on a loaded machine (the ranks' threads then wait longer for a core).
"""
import os, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
args = [a for a in sys.argv[1:] if not a.startswith('--')]
n, worker, busy = int(args[0]) if args else 30, '--worker' in sys.argv, '--busy' in sys.argv
hogs = [subprocess.Popen([sys.executable, '-c', 'while True: pass']) for _ in range(os.cpu_count() if busy else 0)]

def run(script, *a):
    "'ok', 'abort' or 'other' for one torchrun of `script` on 2 processes"
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                        str(script), *a], capture_output=True, text=True, timeout=600)
    kind = 'ok' if r.returncode == 0 else 'abort' if 'terminate called without an active exception' in r.stderr else 'other'
    if kind == 'other': print(r.stderr[-1500:])
    return kind

modes = ['handler'] if worker else ['handler', 'destroy', 'none']
counts, t0 = {m: {'ok': 0, 'abort': 0, 'other': 0} for m in modes}, time.time()
try:
    for i in range(1, n + 1):
        for m in modes:
            if worker:
                out = Path(tempfile.mkdtemp())/'ddp.json'
                kind = run(ROOT/'tests'/'ddp_worker.py', str(out))
                if kind == 'ok' and not out.exists(): kind = 'other'
            else: kind = run(ROOT/'bench'/'ddp_exit.py', m)
            counts[m][kind] += 1
        print(f"run {i:2d}: " + ', '.join(f"{m} {counts[m]['abort']} aborted" for m in modes), flush=True)
finally:
    for h in hogs: h.kill()
what = 'tests/ddp_worker.py' if worker else 'bench/ddp_exit.py'
runs = f"{n} runs" if worker else f"{n} runs of each mode"
print(f"{what}, {runs}{f', a busy loop on each of {len(hogs)} cores' if busy else ''}, {time.time() - t0:.0f} s:")
for m, c in counts.items(): print(f"  {m:8s} {c['ok']:3d} ok, {c['abort']:3d} aborted (SIGABRT), {c['other']} failed otherwise")
sys.exit(0 if counts['handler']['ok'] == n else 1)
