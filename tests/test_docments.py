"Every public parameter of the main entry points is documented beside it (fastcore docments), as `show_doc` shows it"
import pytest
from fastcore.docments import docments

from gdnn_nb.callback import GrowthCallback, ConstrainSimilarity, SimilarityStats
from gdnn_nb.data import cifar_dls
from gdnn_nb.gradcam import gradcam, layer_at
from gdnn_nb.grow import grow, grow_model, grow_groups
from gdnn_nb.schedule import growth_points, target_widths
from gdnn_nb.merge import merge, merge_plan, merge_to, merge_to_widths, MergeCallback, neuron_vectors
from gdnn_nb.grow import shrink
from gdnn_nb.models import count_flops
from gdnn_nb.train import train_run, add_run_options
from gdnn_nb.compare import compare, paired_differences, arm_settings


@pytest.mark.parametrize('f', [GrowthCallback, grow, grow_model, cifar_dls, train_run, gradcam, compare,
                                      paired_differences, count_flops, layer_at, SimilarityStats.plot, ConstrainSimilarity,
                                      grow_groups, growth_points, target_widths, add_run_options, arm_settings,
                                      GrowthCallback.grow_now, merge, merge_plan, merge_to, merge_to_widths, MergeCallback,
                                      neuron_vectors, shrink], ids=lambda f: f.__name__)
def test_every_parameter_is_documented(f):
    docs = docments(f, returns=False, args_kwargs=True)
    missing = [k for k, v in docs.items() if k != 'self' and not v]
    assert not missing, f"{f.__name__}: no comment beside parameter(s) {', '.join(missing)}"
