"Packaging: what a user gets from `pip install`, and what README promises."
import importlib.metadata, sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'tools'))
import make_readme


def test_version_is_single_sourced():
    import gdnn_nb
    assert importlib.metadata.version('gdnn_nb') == gdnn_nb.__version__


def test_public_similarity_api():
    from gdnn_nb.similarity import (neuron_weights, similarity_matrix, similarity_values, similarity_stats,
                                    similarity_hist, plot_similarity)
    from gdnn_nb.constraint import similarity_loss, SimilarityConstraint, reference_loss
    import torch
    C = similarity_matrix(torch.eye(3))
    assert torch.equal(C, torch.eye(3))


def test_moved_names_still_import_with_a_warning():
    "The constraint moved from gdnn_nb.similarity to gdnn_nb.constraint: the old import works and says where it went"
    import pytest
    import gdnn_nb.constraint as constraint
    with pytest.warns(DeprecationWarning, match='moved to gdnn_nb.constraint'):
        from gdnn_nb.similarity import similarity_loss, SimilarityConstraint
    assert similarity_loss is constraint.similarity_loss and SimilarityConstraint is constraint.SimilarityConstraint


def test_nbdev_config():
    from nbdev.config import get_config
    cfg = get_config(ROOT)
    assert cfg.lib_path == ROOT/'gdnn_nb' and cfg.nbs_path == ROOT/'nbs'
    assert 'slow' in cfg.tst_flags.split()


def test_every_numbered_notebook_is_in_the_sidebar():
    quarto = (ROOT/'nbs'/'_quarto.yml').read_text()
    for nb in sorted((ROOT/'nbs').glob('[0-9]*.ipynb')):
        assert nb.name in quarto, f"{nb.name} is missing from the sidebar in nbs/_quarto.yml"


def test_readme_is_generated_from_index():
    assert (ROOT/'README.md').read_text() == make_readme.render(), \
        "README.md is out of date: run `.venv/bin/python tools/make_readme.py`"


def test_every_notebook_has_a_colab_badge_to_itself():
    import json
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        md = ' '.join(''.join(c['source']) for c in json.loads(nb.read_text())['cells'][:4] if c['cell_type'] == 'markdown')
        assert f'colab.research.google.com/github/gdnn-nb/gdnn_nb/blob/main/nbs/{nb.name}' in md, f"{nb.name} has no Open-in-Colab badge to itself"


def test_every_lesson_installs_gdnn_nb_only_on_colab():
    import json
    for nb in sorted((ROOT/'nbs').glob('[0-9]*.ipynb')):
        src = ''.join(''.join(c['source']) for c in json.loads(nb.read_text())['cells'][:5] if c['cell_type'] == 'code')
        assert "if 'google.colab' in sys.modules" in src and 'pip' in src, f"{nb.name} lacks the Colab-only install cell"
