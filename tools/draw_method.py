"""Draw the method's diagram that the site's first page shows: nbs/images/method.png.

    .venv/bin/python tools/draw_method.py
"""
from pathlib import Path
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

OUT = Path(__file__).resolve().parents[1]/'nbs'/'images'/'method.png'
STEPS = [('1  Measure', 'cosine similarity\nof every pair of\na layer\'s neurons', 'similarity map C'),
         ('2  Choose', 'draw candidates,\nkeep those least\nlike the layer', 'new neurons, function kept'),
         ('3  Constrain', 'loss on the pairs\nwith a new neuron,\nevery batch', '+ sim_weight · mean C²'),
         ('4  Schedule', 'when to grow and\nby how much', 'growth points, target width')]

def main():
    fig, ax = plt.subplots(figsize=(10, 3), dpi=150)
    ax.set(xlim=(0, 10), ylim=(-0.45, 2.6)); ax.axis('off')
    for i, (title, body, out) in enumerate(STEPS):
        x = 0.15 + i * 2.5
        ax.add_patch(FancyBboxPatch((x, 0.55), 2.05, 1.85, boxstyle='round,pad=0.03,rounding_size=0.12',
                                    fc=f'C{i}', alpha=0.15, ec=f'C{i}', lw=1.5))
        ax.text(x + 1.02, 2.15, title, ha='center', va='center', fontsize=12, weight='bold')
        ax.text(x + 1.02, 1.35, body, ha='center', va='center', fontsize=10, linespacing=1.3)
        ax.text(x + 1.02, 0.3, out, ha='center', va='center', fontsize=9, style='italic', color='0.3')
        if i < len(STEPS) - 1:
            ax.annotate('', (x + 2.42, 1.45), (x + 2.1, 1.45), arrowprops=dict(arrowstyle='->', lw=1.5, color='0.3'))
    # training goes on, and the next growth step measures again
    ax.annotate('', (1.2, 0.12), (8.8, 0.12), arrowprops=dict(arrowstyle='->', lw=1, color='0.55',
                                                           connectionstyle='arc3,rad=-0.08', ls='--'))
    ax.text(5, -0.3, 'training goes on; at the next growth point, measure again', ha='center', va='center',
            fontsize=9, color='0.4')
    fig.savefig(OUT, bbox_inches='tight', facecolor='white')
    print(f"wrote {OUT}")

if __name__ == '__main__': main()
