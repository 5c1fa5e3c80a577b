"""Count a committed run's training FLOPs again from its schedule, as `TrainFlops` counts them: three times the forward
FLOPs of the model at each epoch's widths, for every training image. For runs whose growth and merge points fall at
epoch starts, the widths follow from the schedule alone (`target_widths`, `step_size`, and the final widths a merge
goes back to), so nothing is trained.

    .venv/bin/python tools/recount_flops.py RUN.json [RUN.json ...] [--write]

Written for the `similarity+merge` runs of nbs/experiments/cifar10-subset-augmented: `TrainFlops` did not see a
merge (it looked for a new model shape only after a growth step), so those runs recorded the pre-merge widths for
their last epochs. `--write` replaces `train_flops` in each file; a growing run without a merge recounts to its own
figure, which checks the replay."""
import argparse, json, warnings
from pathlib import Path
warnings.filterwarnings('ignore')
from gdnn_nb.grow import growable_groups, out_width, set_width
from gdnn_nb.models import count_flops
from gdnn_nb.schedule import growth_points, step_size, target_widths
from gdnn_nb.train import build_model


def widths_of(model): return {g.producer: out_width(model.get_submodule(g.producer)) for g in growable_groups(model)}


def recount(r):
    "The training FLOPs of run summary `r` from its schedule"
    s = r['settings']
    epochs, n_img = r['epochs'], r['train_images'] // r['epochs']
    model = build_model(s['model'], s['width'], r['n_classes'])
    grow = {} if s['strategy'] in ('static', None) else {p[0]: p for p in growth_points(epochs, 1, s['grow_at'])}
    merge = {p[0] for p in growth_points(epochs, 1, s['merge_at'])} if s.get('merge_at') else set()
    targets = target_widths(model, growable_groups(model), s['target_width']) if grow and s['target_width'] else None
    final = widths_of(build_model(s['model'], s['merge_width'], r['n_classes'])) if merge else None
    flops, left = 0, len(grow)
    for e in range(epochs):
        if e in grow:
            gs = growable_groups(model)
            for g in gs:
                n = out_width(model.get_submodule(g.producer))
                set_width(model, g, n + step_size(n, targets[g.producer], left))
            left -= 1
        if e in merge:
            for g in growable_groups(model): set_width(model, g, final[g.producer])
        flops += 3 * count_flops(model) * n_img
    return flops


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('runs', nargs='+'); p.add_argument('--write', action='store_true')
    a = p.parse_args()
    for f in map(Path, a.runs):
        r = json.loads(f.read_text())
        n = recount(r)
        print(f"{f.name}: recorded {r['train_flops']:.4g}, recounted {n:.4g}")
        if a.write and n != r['train_flops']:
            r['train_flops'] = n
            f.write_text(json.dumps(r))


if __name__ == '__main__': main()
