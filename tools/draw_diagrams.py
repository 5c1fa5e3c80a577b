"""Draw the diagrams the site shows: nbs/images/method.png (the first page: the method in four steps) and
nbs/images/distributed.png (Growing inside distributed training: a growth step on two ranks).

    .venv/bin/python tools/draw_diagrams.py
"""
from pathlib import Path
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

IMAGES = Path(__file__).resolve().parents[1]/'nbs'/'images'
STEPS = [('1  Measure', 'cosine similarity\nof every pair of\na layer\'s neurons', 'similarity map C'),
         ('2  Choose', 'draw candidates,\nkeep those least\nlike the layer', 'new neurons, function kept'),
         ('3  Constrain', 'loss on the pairs\nwith a new neuron,\nevery batch', '+ sim_weight · mean C²'),
         ('4  Schedule', 'when to grow and\nby how much', 'growth points, target width')]
# a growth step inside a distributed fit, as GrowthCallback and rewrap take it, on every rank
RANK_STEPS = [('training', 'DDP(module)'), ('grow', 'the module inside\nthe wrapper'),
              ('optimiser', 'state resized with\nthe parameters'), ('sync', 'every tensor\nfrom rank 0'),
              ('wrap again', 'a new DDP, from\nfastai\'s accelerator'), ('training', 'replicas equal,\nbit for bit')]


def box(ax, x, y, w, h, colour, title, body, title_size=12, body_size=10):
    "A rounded box at (x, y), `w` by `h`, with a bold title over its body"
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle='round,pad=0.03,rounding_size=0.12',
                                fc=colour, alpha=0.15, ec=colour, lw=1.5))
    ax.text(x + w / 2, y + h * 0.78, title, ha='center', va='center', fontsize=title_size, weight='bold')
    ax.text(x + w / 2, y + h * 0.36, body, ha='center', va='center', fontsize=body_size, linespacing=1.3)


def arrow(ax, a, b, **kw):
    "An arrow from `a` to `b`; `kw` overrides its style"
    ax.annotate('', b, a, arrowprops=dict(arrowstyle='->', lw=1.5, color='0.3') | kw)


def method():
    fig, ax = plt.subplots(figsize=(10, 3), dpi=150)
    ax.set(xlim=(0, 10), ylim=(-0.45, 2.6)); ax.axis('off')
    for i, (title, body, out) in enumerate(STEPS):
        x = 0.15 + i * 2.5
        ax.add_patch(FancyBboxPatch((x, 0.55), 2.05, 1.85, boxstyle='round,pad=0.03,rounding_size=0.12',
                                    fc=f'C{i}', alpha=0.15, ec=f'C{i}', lw=1.5))
        ax.text(x + 1.02, 2.15, title, ha='center', va='center', fontsize=12, weight='bold')
        ax.text(x + 1.02, 1.35, body, ha='center', va='center', fontsize=10, linespacing=1.3)
        ax.text(x + 1.02, 0.3, out, ha='center', va='center', fontsize=9, style='italic', color='0.3')
        if i < len(STEPS) - 1: arrow(ax, (x + 2.1, 1.45), (x + 2.42, 1.45))
    # training goes on, and the next growth step measures again
    ax.annotate('', (1.2, 0.12), (8.8, 0.12), arrowprops=dict(arrowstyle='->', lw=1, color='0.55',
                                                           connectionstyle='arc3,rad=-0.08', ls='--'))
    ax.text(5, -0.3, 'training goes on; at the next growth point, measure again', ha='center', va='center',
            fontsize=9, color='0.4')
    return fig


def distributed():
    n, w, gap = len(RANK_STEPS), 1.75, 0.3
    fig, ax = plt.subplots(figsize=(11.5, 3.3), dpi=150)
    ax.set(xlim=(-0.55, n * (w + gap)), ylim=(-0.3, 3.05)); ax.axis('off')
    for r, y in ((0, 1.75), (1, 0.15)):
        ax.text(-0.5, y + 0.55, f'rank {r}', ha='left', va='center', fontsize=11, weight='bold', rotation=90)
        for i, (title, body) in enumerate(RANK_STEPS):
            x = 0.1 + i * (w + gap)
            colour = 'C7' if title == 'training' else 'C0' if i < 3 else 'C1'
            box(ax, x, y, w, 1.1, colour, title, body, title_size=10.5, body_size=8.5)
            if i < n - 1: arrow(ax, (x + w + 0.03, y + 0.55), (x + w + gap - 0.03, y + 0.55))
    xs = 0.1 + 3 * (w + gap) + w / 2  # the broadcast, inside `rewrap`
    arrow(ax, (xs, 1.72), (xs, 1.3), lw=2, color='C3')
    ax.text(xs + 0.08, 1.51, 'broadcast', ha='left', va='center', fontsize=8.5, color='C3')
    ax.text(0.1 + 1 * (w + gap), 2.98, 'each rank grows its own copy (the strategies may choose differently) ...',
            ha='left', va='center', fontsize=9, color='0.35')
    ax.text(0.1 + 3 * (w + gap), -0.12, '... rewrap(learn) makes them one again', ha='left', va='center',
            fontsize=9, color='0.35')
    return fig


def main():
    for name, draw in (('method', method), ('distributed', distributed)):
        out = IMAGES/f'{name}.png'
        draw().savefig(out, bbox_inches='tight', facecolor='white')
        print(f"wrote {out}")


if __name__ == '__main__': main()
