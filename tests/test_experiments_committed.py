"""The experiments' tables and figure come from the committed per-run files: `gdnn-compare`, run again with the command the
experiments lesson gives, finds every run done and writes results.csv, table.md, paired.md and compare.png again without
training (training is made to fail here), and the tables come out as committed."""
import json, shutil
from pathlib import Path

import pytest

import gdnn_nb.train as train
import gdnn_nb.compare as compare

ROOT = Path(__file__).resolve().parents[1]
EXP = ROOT/'nbs'/'experiments'/'cifar10-subset'
# the command of the experiments lesson (nbs/05_experiments.ipynb), less --out; the data file is not read
# with --seeds N for the N seeds finished so far (the five seeds run across sessions; the lesson shows the finished ones)
N = len(compare.finished_seeds(EXP))
# these runs trained without augmentation (the loaders skipped it until `augment` became a recorded setting)
ARGV = ['--data', '../shared/data/cifar10_subset.npz', '--model', 'vgg11', '--width', '16', '--final-width', '32', '--epochs', '20',
        '--seeds', str(N), '--device', 'cpu', '--no-augment']
# the comparison with augmentation and Firefly's procedure: the seeds every arm has finished so far
AUG = ROOT/'nbs'/'experiments'/'cifar10-subset-augmented'
N_AUG = len(compare.finished_seeds(AUG))
AUG_ARGV = ['--data', '../shared/data/cifar10_subset.npz', '--model', 'vgg11', '--width', '16', '--final-width', '32',
            '--epochs', '20', '--seeds', str(N_AUG), '--device', 'cpu',
            '--arms', ','.join(compare.ARMS + compare.EXTRA_ARMS)]  # with the arm that grows past the size and merges back
# the paper preset, run on a GPU with the subset (2 seeds, 10 epochs between growth steps); the device is not a setting
# that must match, so the tables re-render here on the CPU
PAPER = ROOT/'nbs'/'experiments'/'paper-preset-subset'
PAPER_ARGV = ['--preset', 'paper', '--round-epochs', '10', '--seeds', '2', '--data', '../shared/data/cifar10_subset.npz',
              '--fp16', '--device', 'cpu', '--no-augment']


@pytest.mark.parametrize('exp,argv,least', [(EXP, ARGV, 2), (PAPER, PAPER_ARGV, 2), (AUG, AUG_ARGV, 1)],
                         ids=['cpu-experiment-unaugmented', 'paper-preset', 'cpu-experiment'])
def test_compare_rerenders_the_committed_results_without_training(exp, argv, least, tmp_path, monkeypatch, capsys):
    n = int(argv[argv.index('--seeds') + 1])
    assert compare.finished_seeds(exp) == list(range(n)) and n >= least, f"finished seeds: {compare.finished_seeds(exp)}"
    shutil.copytree(exp/'runs', tmp_path/'runs', ignore=shutil.ignore_patterns('*.pth'))
    def no_training(*args, **kw): raise AssertionError(f"gdnn-compare started a run that is committed: {args}")
    monkeypatch.setattr(train, 'get_dls', no_training)  # the first thing a run does
    compare.main(argv + ['--out', str(tmp_path)])
    for f in ('results.csv', 'table.md', 'paired.md'):
        assert (tmp_path/f).read_text() == (exp/f).read_text(), f"{f} differs from the committed one"
    assert (tmp_path/'compare.png').stat().st_size > 10_000
    n_runs = n * (len(argv[argv.index('--arms') + 1].split(',')) if '--arms' in argv else len(compare.ARMS))
    assert f'{n_runs} of {n_runs} runs were done before' in capsys.readouterr().out


def test_a_run_with_other_settings_is_refused_before_training(tmp_path, capsys):
    shutil.copytree(EXP/'runs', tmp_path/'runs', ignore=shutil.ignore_patterns('*.pth'))
    with pytest.raises(SystemExit):
        compare.main([('30' if a == '20' else a) for a in ARGV] + ['--out', str(tmp_path)])
    assert 'was made with epochs=20 (now 30)' in capsys.readouterr().err


def test_every_run_with_augmentation_recorded_the_images_it_augmented():
    runs = [json.loads(f.read_text()) for f in sorted((AUG/'runs').glob('*.json'))]
    assert len(runs) >= len(compare.ARMS)
    for r in runs:
        assert r['settings']['augment'] is True, r['arm']
        n, aug = r['train_images'], r['augmented_images']
        assert n > 0
        # firefly's candidate phase reads augmented training batches too; a growing arm's check of its layers, at
        # the start of the fit, one training batch
        if r['arm'] == 'firefly': assert aug > n
        elif r['arm'] in compare.GROWING: assert aug == n + r['settings']['bs'], (r['arm'], r['seed'], aug, n)
        # static arms; and similarity+merge, run after the layer check moved to a validation batch
        else: assert aug == n, (r['arm'], r['seed'], aug, n)
