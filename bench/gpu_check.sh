#!/usr/bin/env bash
# The prepared GPU check, one device call of under 8 minutes: tests/test_gpu.py, the benches that say what growth and the
# similarity constraint cost on the user's GPU, and every lesson top to bottom in a fresh kernel as Colab runs it
# (tests/test_lessons.py, test mode, no ../shared), into one results file per device, bench/results/gpu_check_<DEVICE>.txt,
# written as it goes to $OUT too (what a device call brings back, even from a call cut short). The goals' measurements
# come first; each step has its own limit, and one that would start past the check's deadline (GDNN_CHECK_SECONDS from
# the script's start: 480 on a GPU, inside the call's 540) is left out, saying so. Exit status: 2 when a need is
# missing, 1 when a step failed or ran out of time, 0 otherwise.
#
# On a lent GPU machine (its image has PyTorch but not fastai, nbdev or a Jupyter kernel; no network): first, here,
#     .venv/bin/python bench/gpu_wheels.py
# (wheels into .whl/, the CIFAR-10 subset into .data/, checked offline), then one device call:
#     run(command="bash bench/gpu_check.sh", carry=[".whl", ".data"], timeout_s=540)
# Here, with no GPU, the same script's dry run (small sizes, two lessons, the GPU tests skipped):
#     bash bench/gpu_check.sh --device cpu
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
DEV=cuda; [ "${1:-}" = "--device" ] && DEV=${2:-cuda}
PY=python3; [ -x .venv/bin/python ] && [ "$DEV" = cpu ] && PY=.venv/bin/python
SMALL=$([ "$DEV" = cpu ] && echo 1 || echo 0)
DEADLINE=${GDNN_CHECK_SECONDS:-$([ "$SMALL" = 1 ] && echo 900 || echo 480)}
ok() { echo "check: $*"; }
fail() { echo "check failed: $*"; exit 2; }

# what it needs, one line each, before any work
if [ "$PY" = .venv/bin/python ]; then export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}; ok "the dry run uses .venv's packages (.whl is for the GPU machine's Python)"
elif [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH} && ok "wheels from .whl installed in /tmp/site" \
    || fail "the wheels in .whl would not install (run .venv/bin/python bench/gpu_wheels.py here again)"
  # the image's list has no versions: what the carried wheels ask of the image's packages is checked here
  $PY bench/gpu_wheels.py --installed || ok "the run goes on; a step that needs what is listed above may fail"
else export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}; ok "no .whl: the packages must be installed already"; fi
$PY -c "import torch" 2>/dev/null && ok "torch $($PY -c 'import torch; print(torch.__version__)')" || fail "no torch in $PY"
if [ "$DEV" != cpu ]; then
  $PY -c "import torch, sys; sys.exit(not torch.cuda.is_available())" && ok "GPU: $($PY -c 'import torch; print(torch.cuda.get_device_name())')" \
    || fail "torch sees no CUDA GPU; on a machine without one use --device cpu"
fi
$PY -c "import warnings; warnings.filterwarnings('ignore'); import gdnn_nb.callback, gdnn_nb.merge" 2>/dev/null && ok "gdnn_nb imports" \
  || fail "gdnn_nb does not import: a package is missing (.venv/bin/python bench/gpu_wheels.py gathers what to carry)"
for f in "${GDNN_CIFAR_NPZ:-}" .data/cifar10_subset.npz ../shared/data/cifar10_subset.npz; do
  [ -n "$f" ] && [ -f "$f" ] && export GDNN_CIFAR_NPZ=$(realpath "$f") && break
done
[ -n "${GDNN_CIFAR_NPZ:-}" ] && [ -f "$GDNN_CIFAR_NPZ" ] && ok "CIFAR-10 subset: $GDNN_CIFAR_NPZ" \
  || { ok "no CIFAR-10 subset: the CIFAR benches are left out, and the lessons that need CIFAR-10 fail (no network)"; GDNN_CIFAR_NPZ=; }
LESSONS=1
$PY -c "import nbclient, ipykernel, nbdev.showdoc" 2>/dev/null && ok "the lesson runner imports (nbclient, ipykernel, nbdev)" \
  || { ok "the lesson runner does not import (nbclient, ipykernel, nbdev): the lessons are left out"; LESSONS=; }

NAME=$($PY -c "import torch; print(torch.cuda.get_device_name().split()[1].lower() if '$DEV' != 'cpu' else 'cpu')" 2>/dev/null)
RES=bench/results/gpu_check_${NAME:-$DEV}.txt
FAILED=$(mktemp)
export PYTHONUNBUFFERED=1 GDNN_LESSON_TIMES=/tmp/gdnn_lesson_times.json
rm -f "$GDNN_LESSON_TIMES"
step() {  # step LIMIT COMMAND...: run it under the smaller of LIMIT and what is left of the deadline
  local limit=$1; shift; echo; echo "== $*"; local left=$(( DEADLINE - $(date +%s) + T0 ))
  if [ "$left" -lt 20 ]; then echo "   left out: the check's $DEADLINE s are spent"; echo "$* (left out)" >> "$FAILED"; return; fi
  [ "$limit" -gt "$left" ] && limit=$left; local t0=$(date +%s)
  timeout -k 10 "$limit" "$@" 2>&1 | grep -v "Warning\|warnings.warn\|warn(\|No CUDA runtime is found"
  local rc=${PIPESTATUS[0]}
  echo "   ($(( $(date +%s) - t0 )) s, exit $rc$([ "$rc" = 124 ] && echo ": out of time"))"
  [ "$rc" = 0 ] || echo "$* (exit $rc)" >> "$FAILED"; }
lesson_times() {  # each lesson's wall time as the lesson test wrote it, also when it ran out of time
  [ -f "$GDNN_LESSON_TIMES" ] && $PY -c "import json; t = json.load(open('$GDNN_LESSON_TIMES')); print(f'   lessons done: {len(t)}; s:', ', '.join(f'{k[:-6]} {v}' for k, v in t.items()))"; }
PYTEST="$PY -m pytest -q -p no:cacheprovider --disable-warnings"
{
  echo "# bash bench/gpu_check.sh --device $DEV, $(date +%Y-%m-%d), $($PY -c "import torch; print(torch.cuda.get_device_name() if '$DEV' != 'cpu' else 'CPU', torch.__version__)")$([ "$SMALL" = 1 ] && echo ", $(nproc) cores: the dry run (small sizes, two lessons; the GPU tests skip)")"
  step 150 $PYTEST tests/test_gpu.py
  if [ "$SMALL" = 1 ]; then
    [ -n "$GDNN_CIFAR_NPZ" ] && step 240 $PY bench/callback_bench.py --device $DEV --only e --epochs-d 4 --repeats 1
    step 120 $PY bench/constraint_bench.py --device $DEV --width 8 --quick --only steps
    step 120 $PY bench/similarity_bench.py --device $DEV --n 128 --d 576
    [ -n "$LESSONS" ] && step 240 env GDNN_LESSONS_ONLY=00_similarity,03_callback $PYTEST tests/test_lessons.py; lesson_times
    step 120 $PY bench/merge_bench.py --device $DEV --rounds 1
    [ -n "$GDNN_CIFAR_NPZ" ] && step 180 $PY bench/callback_bench.py --device $DEV --only a --epochs-a 1 --repeats 1
  else
    [ -n "$GDNN_CIFAR_NPZ" ] && step 120 $PY bench/callback_bench.py --device $DEV --only e --epochs-d 5 --repeats 3
    step 100 $PY bench/constraint_bench.py --device $DEV --quick
    step 40 $PY bench/similarity_bench.py --device $DEV
    [ -n "$LESSONS" ] && step 200 env GDNN_LESSON_KERNELS=4 $PYTEST tests/test_lessons.py; lesson_times
    step 40 $PY bench/merge_bench.py --device $DEV --rounds 5
    [ -n "$GDNN_CIFAR_NPZ" ] && step 60 $PY bench/callback_bench.py --device $DEV --only a --epochs-a 2 --repeats 3
  fi
  echo; if [ -s "$FAILED" ]; then echo "steps that failed, ran out of time or were left out:"; sed 's/^/   /' "$FAILED"
  else echo "every step ran and passed"; fi
  echo "the check took $(( $(date +%s) - T0 )) s"
} | tee "$RES" ${OUT:+"$OUT/$(basename "$RES")"}
echo "wrote $RES"
[ -s "$FAILED" ] && exit 1 || exit 0
