"""Rough costs of costly clusterings, as ``clustergrid run --dry-run`` warns about them."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_experiment
from typer.testing import CliRunner

from clustergrid import costs, runner
from clustergrid.cache import Cache
from clustergrid.cli import app
from clustergrid.locations import locate
from clustergrid.spec import parse_experiment

# sim-galaxies stamps of 32 x 32 pixels in one band: 1,024 dimensions for `pixels`.
PIXELS = """\
name: costly
datasets:
  - plugin: sim-galaxies
    n_samples: 200
    size: 32
    bands: 1
encoders:
  - plugin: pixels
reducers:
  - plugin: none
  - plugin: pca
    n_components: 20
clusterers:
  - plugin: gmm
    covariance_type: [full, diag]
    n_clusters: 4
metrics: [silhouette]
"""


def _warnings(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Warning:")]


def test_dry_run_warns_about_full_covariances_on_raw_pixels_only(workdir):
    write_experiment(workdir, PIXELS)
    result = CliRunner().invoke(app, ["run", "experiment.yaml", "--dry-run"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    (warning,) = _warnings(result.output)  # not for diag, nor after pca
    assert warning.startswith(
        "Warning: gmm[covariance_type=full,n_clusters=4] on "
        "sim-galaxies[bands=1,n_samples=200,size=32] / pixels / none: full covariances in "
        "d=1,024 dimensions (200 points, k=4): about 131 MiB of memory per fit; one EM "
        "iteration is O(n k d^2 + k d^3) = 6.0e+09 multiply-adds")
    assert warning.endswith("Consider covariance_type: diag, or a reducer first (such as "
                            "pca with n_components: 50).")
    assert "Dry run: nothing was run." in result.output
    assert not (workdir / "clustergrid-runs").exists()


def test_dry_run_counts_the_verdicts_refits_and_a_sweep_of_k(registry, workdir):
    text = PIXELS.replace("covariance_type: [full, diag]\n    n_clusters: 4",
                          "n_clusters: auto\n    k_range: [[2, 5]]")
    experiment = parse_experiment(text + "verdict: {null_draws: 3, resamples: 2}\n",
                                  registry)
    _, preview = runner.dry_run(experiment, registry, None)
    (warning,) = preview.warnings
    assert "(200 points, k=2..5, 4 fits): about 163 MiB" in warning
    assert "with the verdict's 5 refits" in warning


def test_cached_outputs_give_the_dimension_of_any_encoder(registry, workdir):
    # `morphology` declares no output size: only a cached output tells its dimension.
    text = PIXELS.replace("plugin: pixels", "plugin: morphology")
    experiment = parse_experiment(text, registry)
    plan, before = runner.dry_run(experiment, registry, None)
    assert before.warnings == []
    encode = plan.combinations[0].steps["encode"]
    cache = Cache(locate(experiment).cache)
    cache.path(encode).mkdir(parents=True)
    np.save(cache.path(encode) / "X.npy", np.zeros((200, 300), dtype=np.float32))
    _, after = runner.dry_run(experiment, registry, None)
    (warning,) = after.warnings
    assert "morphology / none: full covariances in d=300 dimensions (200 points" in warning


@pytest.mark.parametrize(("size", "warned"), [(20, True), (8, False)])
def test_transforms_are_followed_to_the_images_the_encoder_sees(registry, workdir, size,
                                                                 warned):
    # Resized to 20 x 20: 400 pixels; to 8 x 8: 64, nothing to warn about.
    text = PIXELS.replace("    bands: 1\n", "    bands: 1\n    transforms:\n"
                          f"      - {{plugin: resize, size: {size}}}\n")
    _, preview = runner.dry_run(parse_experiment(text, registry), registry, None)
    assert [" in d=400 dimensions (200 points" in w for w in preview.warnings] == (
        [True] if warned else [])


def test_mixture_cost_figures():
    cost = costs.MixtureCost(n=1000, d=1000, ks=(4,), covariance_type="full")
    # four d x d matrices per component, the n x d and n x k temporaries (the arithmetic
    # gmm declares: ``memory.gaussian_mixture_bytes``)
    assert cost.memory_bytes == 4 * 4 * 1000**2 * 8 + (2 * 1000 * 1000 + 3 * 1000 * 4) * 8
    # n k d^2 (distances) + k (n d^2 + d^3) (covariances, their factors)
    assert cost.per_iteration() == 4e9 + 4 * (1e9 + 1e9)
    assert cost.at_most() == 100 * cost.per_iteration()
    tied = costs.MixtureCost(n=1000, d=1000, ks=(4,), covariance_type="tied")
    assert tied.per_iteration() == 4e9 + 1e9 + 1e9
    assert costs.human_bytes(96 * 2**20) == "96 MiB"
    assert costs.human_bytes(1.5 * 2**30) == "1.5 GiB"
    assert [costs.human_seconds(s) for s in (0.25, 90, 5400, 3 * 86400)] == [
        "0.2 s", "1.5 min", "1.5 h", "3.0 days"]


@pytest.mark.parametrize("plugin", ["kmeans", "hdbscan"])
def test_clusterers_without_covariances_have_no_mixture_cost(registry, plugin):
    from clustergrid.spec import Component

    assert costs.mixture_cost(Component("clusterer", plugin, ()), registry, 100, 5000) is None
