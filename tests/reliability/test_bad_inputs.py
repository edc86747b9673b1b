"""A corpus of bad experiment files: each is refused before anything runs, with one line
naming the file, the line and the key."""

from __future__ import annotations

import pytest

from clustergrid.errors import SpecError
from clustergrid.registry import Registry
from clustergrid.spec import MAX_COMBINATIONS, check_grid_size, parse_experiment

GOOD = """\
name: corpus
datasets:
  - plugin: digits
    n_samples: 100
encoders:
  - plugin: pixels
reducers:
  - plugin: pca
    n_components: 5
clusterers:
  - plugin: kmeans
    n_clusters: 3
"""

#: (what replaces what in GOOD, the exact error)
CORPUS = {
    "n_clusters true": (("n_clusters: 3", "n_clusters: true"),
                        "<experiment>:12: clusterers[0].n_clusters: True is not valid: Input "
                        "should be a valid integer (true and false are not numbers)"),
    "n_clusters false": (("n_clusters: 3", "n_clusters: false"),
                         "<experiment>:12: clusterers[0].n_clusters: False is not valid: Input "
                         "should be a valid integer (true and false are not numbers)"),
    "n_clusters negative": (("n_clusters: 3", "n_clusters: -3"),
                            "<experiment>:12: clusterers[0].n_clusters: -3 is not valid: Input "
                            "should be greater than or equal to 2"),
    "n_clusters one": (("n_clusters: 3", "n_clusters: 1"),
                       "<experiment>:12: clusterers[0].n_clusters: 1 is not valid: Input "
                       "should be greater than or equal to 2"),
    "n_clusters in a sweep": (("n_clusters: 3", "n_clusters: [3, 0]"),
                              "<experiment>:12: clusterers[0].n_clusters: 0 is not valid: "
                              "Input should be greater than or equal to 2"),
    "n_clusters fraction": (("n_clusters: 3", "n_clusters: 2.5"),
                            "<experiment>:12: clusterers[0].n_clusters: 2.5 is not valid: "
                            "Input should be a valid integer, got a number with a fractional "
                            "part"),
    "n_clusters word": (("n_clusters: 3", "n_clusters: many"),
                        "<experiment>:12: clusterers[0].n_clusters: 'many' is not valid: "
                        "Input should be a valid integer, unable to parse string as an "
                        "integer"),
    "n_components zero": (("n_components: 5", "n_components: 0"),
                          "<experiment>:9: reducers[0].n_components: 0 is not valid: Input "
                          "should be greater than or equal to 1"),
    "n_components true": (("n_components: 5", "n_components: true"),
                          "<experiment>:9: reducers[0].n_components: True is not valid: Input "
                          "should be a valid integer (true and false are not numbers)"),
    "n_components fraction one": (("n_components: 5", "n_components: 1.5"),
                                  "<experiment>:9: reducers[0].n_components: 1.5 is not "
                                  "valid: Input should be a valid integer, got a number with "
                                  "a fractional part"),
    "unknown parameter": (("n_clusters: 3", "n_cluster: 3"),
                          "<experiment>:12: clusterers[0].n_cluster: unknown parameter of "
                          "clusterer 'kmeans' (known: n_clusters, n_init, random_state, "
                          "k_range, "
                          "criterion)"),
    "unknown plugin": (("plugin: pixels", "plugin: pixles"), None),
    "unknown top-level key": (("name: corpus", "name: corpus\nseed: 3"),
                              "<experiment>:2: seed: unknown key"),
    "empty sweep": (("n_clusters: 3", "n_clusters: []"),
                    "<experiment>:12: clusterers[0].n_clusters: an empty list sweeps over "
                    "nothing: the grid is empty"),
    "no encoders": (("encoders:\n  - plugin: pixels", "encoders: []"),
                    "<experiment>:5: encoders: must list at least one entry"),
    "missing name": (("name: corpus\n", ""), "<experiment>:1: name: Field required"),
    "bad name": (("name: corpus", "name: '../up'"),
                 "<experiment>:1: name: String should match pattern "
                 "'^[A-Za-z0-9][A-Za-z0-9_.\\-]*$'"),
    "seed not a number": (("name: corpus", "name: corpus\nseeds: [zero]"),
                          "<experiment>:2: seeds[0]: Input should be a valid integer, unable "
                          "to parse string as an integer"),
    "workers zero": (("name: corpus", "name: corpus\nexecutor: {workers: 0}"),
                     "<experiment>:2: executor.workers: Input should be greater than or "
                     "equal to 1"),
    "unknown executor": (("name: corpus", "name: corpus\nexecutor: {kind: slurm}"),
                         "<experiment>:2: executor.kind: Input should be 'local' or 'dask'"),
    "not YAML": (("n_clusters: 3", "n_clusters: [3"), None),
    "python tag": (("n_clusters: 3", "n_clusters: !!python/object/apply:os.system [ls]"),
                   None),
    "map sweep": (("name: corpus", "name: corpus\nmap: {plugin: pca, n_components: [2, 3]}"),
                  "<experiment>:2: map: one reducer draws the maps: give single values, not "
                  "a sweep"),
}


@pytest.fixture(scope="module")
def registry():
    return Registry.load()


@pytest.mark.parametrize("case", CORPUS)
def test_a_bad_file_is_refused_in_one_line(registry, case):
    (old, new), expected = CORPUS[case]
    assert old in GOOD
    with pytest.raises(SpecError) as raised:
        parse_experiment(GOOD.replace(old, new, 1), registry)
    message = str(raised.value)
    assert "\n" not in message
    if expected is not None:
        assert message == expected
    assert raised.value.exit_code == 2


def test_the_corpus_varies_a_file_that_is_valid(registry):
    experiment = parse_experiment(GOOD, registry)
    assert experiment.clusterers[0].kwargs == {"n_clusters": 3}
    auto = parse_experiment(GOOD.replace("n_clusters: 3", "n_clusters: auto"), registry)
    assert auto.clusterers[0].kwargs == {"n_clusters": "auto"}
    fraction = parse_experiment(GOOD.replace("n_components: 5", "n_components: 0.9"),
                                registry)
    assert fraction.reducers[0].kwargs == {"n_components": 0.9}


def test_a_grid_over_the_limit_is_refused_naming_the_confirmation(registry):
    sweep = list(range(2, MAX_COMBINATIONS + 3))
    experiment = parse_experiment(GOOD.replace("n_clusters: 3", f"n_clusters: {sweep}"),
                                  registry)
    with pytest.raises(SpecError, match=r"^corpus: 10,001 combinations, more than 10,000; "
                       r"check the sweeps, or confirm with --max-combinations 10001$"):
        check_grid_size(experiment)
    check_grid_size(experiment, limit=10_001)  # confirmed
