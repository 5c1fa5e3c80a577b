"""Run the 2-process distributed growth check (tests/ddp_worker.py --quick: a VGG-11 growing with firefly mid-epoch and
at an epoch start, CPU, gloo) N times in a row, with no retry, and count how each run ended. A rank that exits still in
its process group can abort after the fit (SIGABRT, 'terminate called without an active exception').

    .venv/bin/python bench/ddp_repeat.py [N] [--stay]

N: runs (default 20). --stay: the same runs with `gdnn_nb.distributed.leave_process_group` unregistered, so each rank
exits still in its process group, as it did before that handler existed.
"""
import subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
args = [a for a in sys.argv[1:] if not a.startswith('--')]
n, stay = int(args[0]) if args else 20, '--stay' in sys.argv
# the worker, run with the exit handler removed
STAY = ("import atexit, runpy, sys; import gdnn_nb.distributed as d; atexit.unregister(d.leave_process_group); "
        "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")
counts, t0 = {'ok': 0, 'abort': 0, 'other': 0}, time.time()
for i in range(1, n + 1):
    out = Path(tempfile.mkdtemp())/'ddp.json'
    worker = [str(ROOT/'tests'/'ddp_worker.py'), str(out), '--quick']
    if stay:
        stub = out.with_name('stay.py'); stub.write_text(STAY)
        worker = [str(stub)] + worker
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                        *worker],
                       capture_output=True, text=True, timeout=600)
    kind = ('ok' if r.returncode == 0 and out.exists() else
            'abort' if 'terminate called without an active exception' in r.stderr else 'other')
    counts[kind] += 1
    print(f"run {i:2d}: {kind} (exit {r.returncode})", flush=True)
    if kind == 'other': print(r.stderr[-1500:])
print(f"{'exit handler removed: ' if stay else ''}{n} runs in {time.time() - t0:.0f} s: {counts['ok']} ok, {counts['abort']} aborted (SIGABRT), "
      f"{counts['other']} failed otherwise")
sys.exit(0 if counts['ok'] == n else 1)
