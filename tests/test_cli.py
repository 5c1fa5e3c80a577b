"End to end: the console commands a user runs, as installed by `pip install -e .`"
import csv, json, shutil, subprocess, sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def run(cmd, *args, cwd):
    exe = shutil.which(cmd, path=str(BIN)) or shutil.which(cmd)
    assert exe, f"{cmd} is not installed; run `python3 tools/dev.py install`"
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize('cmd', ['gdnn-train', 'gdnn-compare'])
def test_help_documents_every_option(cmd, tmp_path):
    r = run(cmd, '--help', cwd=tmp_path)
    assert r.returncode == 0
    for opt in ['--data', '--model', '--width', '--epochs', '--sim-weight', '--grow-at', '--seed', '--device', '--fp16']:
        assert opt in r.stdout, f"{cmd} --help does not mention {opt}"
    if cmd == 'gdnn-train':
        for opt in ['--strategy', '--grow-by']: assert opt in r.stdout


def test_tiny_train_writes_its_outputs(tmp_path):
    r = run('gdnn-train', '--width', '4', '--epochs', '2', '--n-train', '256', '--n-test', '64', '--grow-at', '1', '--device', 'cpu', '--name', 'tiny', cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    out = tmp_path/'runs'/'tiny'
    assert {p.name for p in out.iterdir()} == {'metrics.json', 'history.json', 'model.pth', 'accuracy.png', 'widths.png', 'similarity.png'}
    m = json.loads((out/'metrics.json').read_text())
    assert [e['width'] for e in m['epochs_log']] == [4, 6]
    assert 'epoch  width     params  accuracy  mean |cos|' in r.stdout
    h = json.loads((out/'history.json').read_text())
    assert len(h) == 1 and h[0]['epoch'] == 1 and h[0]['widths_after']['features.0'] == 6
    for png in ('accuracy.png', 'widths.png', 'similarity.png'):
        assert (out/png).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_tiny_compare_writes_a_table_and_resumes(tmp_path):
    args = ['--width', '4', '--epochs', '2', '--seeds', '1', '--n-train', '128', '--n-test', '64', '--grow-at', '1', '--device', 'cpu']
    r = run('gdnn-compare', *args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    out = tmp_path/'runs'/'compare'
    rows = list(csv.DictReader(open(out/'results.csv')))
    assert [x['arm'] for x in rows] == ['similarity', 'random', 'net2net', 'firefly', 'static-initial', 'static-final', 'static-matched']
    assert '| similarity | 1 |' in (out/'table.md').read_text()
    r2 = run('gdnn-compare', *args, cwd=tmp_path)
    assert '7 of 7 runs were done before' in r2.stdout


@pytest.mark.parametrize('args, msg', [
    (['--width', '0'], 'argument --width: 0 must be more than 0'),
    (['--epochs', '2.5'], "argument --epochs: '2.5' is not a whole number"),
    (['--lr', 'nan'], 'argument --lr: nan is not a finite number'),
    (['--lr', 'inf'], 'argument --lr: inf is not a finite number'),
    (['--lr=-1e-3'], 'argument --lr: -1e-3 must be more than 0'),
    (['--sim-weight', '-0.1'], 'argument --sim-weight: -0.1 must be at least 0'),
    (['--grow-by', 'nan'], 'argument --grow-by: nan is not a finite number'),
    (['--grow-at', '2,9', '--epochs', '3'], 'epoch 9 is beyond this fit of 3 epochs'),
    (['--grow-at', '1.5'], 'is a float >= 1; fractions of training lie in (0, 1)'),
    (['--data', 'nowhere.npz'], "no file or folder at 'nowhere.npz'"),
    (['--device', 'tpu'], '--device tpu: use auto, cpu, cuda or cuda:N'),
    (['--fp16', '--device', 'cpu'], 'fp16: mixed precision needs a CUDA GPU and this run is on cpu; drop fp16'),
    (['--out', 'a-file'], '--out a-file: is a file; give a folder for the runs'),
    (['--repeat', 'a-file'], '--repeat a-file: not a metrics.json written by gdnn-train'),
])
def test_bad_values_get_one_line_before_training(args, msg, tmp_path, monkeypatch, capsys):
    "In the command's own process (the console command's path is the tests above and below): exit 2, one line, no work"
    from gdnn_nb.train import main
    (tmp_path/'a-file').write_text('not a folder, not a metrics.json')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e: main(['--n-train', '64', '--n-test', '32', *args])
    assert e.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 or lines[0].startswith('usage:'), lines  # argparse adds its usage line
    assert msg in lines[-1]
    assert not list((tmp_path/'runs').glob('*/metrics.json'))  # nothing trained


def test_compare_refuses_to_resume_with_other_settings(tmp_path):
    args = ['--width', '4', '--seeds', '1', '--n-train', '64', '--n-test', '32', '--device', 'cpu', '--arms', 'static-initial']
    assert run('gdnn-compare', *args, '--epochs', '1', cwd=tmp_path).returncode == 0
    r = run('gdnn-compare', *args, '--epochs', '2', cwd=tmp_path)
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    assert "static-initial-seed0.json was made with epochs=1 (now 2); use another --out" in r.stderr.strip().splitlines()[-1]
    r = run('gdnn-compare', *args, '--epochs', '1', '--data', 'shapes', '--lr', '0.01', cwd=tmp_path)
    assert "was made with lr=0.003 (now 0.01)" in r.stderr


def _interrupt_after_first_epoch(args, cwd, ck):
    "Start `gdnn-train args`, press Ctrl-C once `ck` (its checkpoint) holds an epoch; returns the result"
    import os, signal, time
    exe = shutil.which('gdnn-train', path=str(BIN))
    p = subprocess.Popen([exe, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not ck.exists() and p.poll() is None and time.time() - t0 < 240: time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    return p.returncode, out, err


def test_ctrl_c_keeps_the_epochs_done_and_the_same_command_resumes(tmp_path):
    # 4 epochs after the first: seconds for the Ctrl-C to arrive before the run ends
    args = ['--width', '4', '--epochs', '5', '--n-train', '512', '--n-test', '64', '--grow-at', '1,2',
            '--device', 'cpu', '--name', 'r']
    run_dir = tmp_path/'runs'/'r'
    rc, out, err = _interrupt_after_first_epoch(args, tmp_path, run_dir/'checkpoint.pth')
    assert rc == 130 and 'Traceback' not in err, err[-2000:]
    assert err.strip().splitlines()[-1] == (f"gdnn-train: interrupted; the epochs done are saved in "
                                            f"runs/r/checkpoint.pth; the same command resumes")
    assert not (run_dir/'metrics.json').exists()  # not marked finished
    r = run('gdnn-train', *args, cwd=tmp_path)  # the same command, --name included
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'resuming the unfinished run in runs/r' in r.stdout
    m = json.loads((run_dir/'metrics.json').read_text())
    h = json.loads((run_dir/'history.json').read_text())
    assert [e['width'] for e in m['epochs_log']] == [4, 6, 9, 9, 9] and [e['epoch'] for e in h] == [1, 2]
    assert m['train_images'] == 5 * 512 and not (run_dir/'checkpoint.pth').exists()
    assert m['augmented_images'] >= 5 * 512
    r = run('gdnn-train', *args, cwd=tmp_path)  # finished: the name is taken now
    assert r.returncode == 2 and 'already holds a run' in r.stderr


@pytest.mark.parametrize('cmd', ['gdnn-train', 'gdnn-compare'])
def test_an_unwritable_out_gets_one_line_before_training(cmd, tmp_path):
    (tmp_path/'a-file').write_text('')
    r = run(cmd, '--out', 'a-file/runs', '--epochs', '1', '--n-train', '64', '--n-test', '32', cwd=tmp_path)
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    assert 'cannot write there' in r.stderr.strip().splitlines()[-1]
