"""``--set KEY=VALUE``: an experiment file shrunk or changed without copying it."""

from __future__ import annotations

import pytest
from conftest import write_experiment
from typer.testing import CliRunner

from clustergrid.cli import app
from clustergrid.errors import SpecError
from clustergrid.spec import apply_overrides, load_experiment

SMALL = """\
name: small
seeds: [0, 1]
datasets:
  - plugin: digits
    n_samples: 300
    transforms:
      - plugin: normalize
encoders:
  - plugin: pixels
clusterers:
  - plugin: kmeans
    n_clusters: [4, 8]
executor: {workers: 2}
"""


def test_overrides_reach_lists_mappings_and_new_keys(workdir, registry):
    path = write_experiment(workdir, SMALL)
    experiment = load_experiment(path, registry, overrides=[
        "datasets.0.n_samples=120",              # a number indexes a list
        "seeds=[0]",                             # the value is YAML
        "executor.workers=1",
        "clusterers.0.n_clusters=3",             # a sweep replaced by one value
        "datasets.0.transforms.0.method=zscore",  # a parameter the file leaves at its default
        "verdict=null",                          # a section the file does not have
        "map={plugin: pca}",
    ])
    (dataset,) = experiment.datasets
    assert dataset.dataset.kwargs == {"n_samples": 120}
    assert dataset.transforms[0].kwargs == {"method": "zscore"}
    assert experiment.seeds == (0,)
    assert experiment.executor.workers == 1
    assert [c.kwargs for c in experiment.clusterers] == [{"n_clusters": 3}]
    assert experiment.verdict is None
    assert experiment.map.plugin == "pca"
    # Nothing given, nothing changed; the file itself is never written.
    assert load_experiment(path, registry).grid_size == 4
    assert path.read_text() == SMALL


def test_later_overrides_win_and_the_mapping_is_not_changed():
    raw = {"name": "x", "seeds": [0, 1], "executor": {"workers": 2}}
    result = apply_overrides(raw, ["seeds=[3]", "seeds=[4, 5]", "executor.workers=3",
                                   "description=a = b"])
    assert result == {"name": "x", "seeds": [4, 5], "executor": {"workers": 3},
                      "description": "a = b"}  # only the first = splits
    assert raw == {"name": "x", "seeds": [0, 1], "executor": {"workers": 2}}


@pytest.mark.parametrize("override, message", [
    ("datasets.0.n_sample", "--set 'datasets.0.n_sample': expected KEY=VALUE"),
    ("seed=[0]", "--set seed: no key 'seed' at the top level (keys: name, description, "
                 "seeds,"),
    ("dataset.0.n_samples=1", "--set dataset.0.n_samples: no key 'dataset' at the top level"),
    ("datasets.1.n_samples=1", "--set datasets.1.n_samples: datasets is a list of 1: an "
                               "index from 0 to 0, not '1'"),
    ("datasets.first.n_samples=1", "datasets is a list of 1: an index from 0 to 0, not "
                                   "'first'"),
    ("executor.pool.size=2", "--set executor.pool.size: no key 'pool' in executor "
                             "(keys: workers)"),
    ("datasets.0.transforms.0.method.x=1", "datasets.0.transforms.0.method is None, not a "
                                           "mapping or a list"),
    ("name.first=a", "--set name.first: name is 'small', not a mapping or a list"),
    ("seeds=[0", "--set seeds: '[0' is not valid YAML"),
])
def test_a_path_that_leads_nowhere_is_one_line_naming_the_key(workdir, registry, override,
                                                              message):
    path = write_experiment(workdir, SMALL.replace("      - plugin: normalize",
                                                   "      - plugin: normalize\n"
                                                   "        method: null"))
    with pytest.raises(SpecError) as error:
        load_experiment(path, registry, overrides=[override])
    text = str(error.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: ") and message in text


def test_an_overridden_value_is_validated_with_the_file_and_keeps_its_line(workdir,
                                                                           registry):
    path = write_experiment(workdir, SMALL)
    with pytest.raises(SpecError) as error:
        load_experiment(path, registry, overrides=["datasets.0.n_samples=many",
                                                   "encoders.0.downsampel=2"])
    assert str(error.value).splitlines() == [
        f"{path}:5: datasets[0].n_samples: 'many' is not valid: Input should be a valid "
        "integer, unable to parse string as an integer",
        # A key the file does not have is placed at its entry's line.
        f"{path}:9: encoders[0].downsampel: unknown parameter of encoder 'pixels' "
        "(known: downsample, batch_size)",
    ]


def test_dry_run_honours_set_and_a_bad_key_is_a_spec_error(workdir):
    write_experiment(workdir, SMALL)
    runner = CliRunner()
    full = runner.invoke(app, ["run", "experiment.yaml", "--dry-run"])
    assert full.exit_code == 0, full.output
    assert "Experiment small: 4 combinations" in full.output
    small = runner.invoke(app, ["run", "experiment.yaml", "--dry-run", "--set", "seeds=[0]",
                                "--set", "clusterers.0.n_clusters=3",
                                "--set", "name=small-test"])
    assert small.exit_code == 0, small.output
    assert "Experiment small-test: 1 combinations" in small.output
    assert not (workdir / "clustergrid-runs").exists()
    # main() prints a ClustergridError as one `error:` line and exits with its code.
    bad = runner.invoke(app, ["run", "experiment.yaml", "--dry-run", "--set", "sedes=[0]"])
    assert isinstance(bad.exception, SpecError) and bad.exception.exit_code == 2
    assert "--set sedes: no key 'sedes' at the top level" in str(bad.exception)
