"""A corpus of bad inputs. Bad experiment files: each is refused before anything runs,
with one line naming the file, the line and the key. Bad data files, through the real
``clustergrid run``: NaN pixels name their files and the transform that replaces them,
and the files ``on_error: skip`` drops are counted with the path of their list."""

from __future__ import annotations

import csv
import re

import harness
import numpy as np
import pytest

from clustergrid.errors import SpecError
from clustergrid.registry import Registry
from clustergrid.spec import (
    MAX_COMBINATIONS,
    check_grid_size,
    load_experiment,
    parse_experiment,
)

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
    "n_clusters quoted": (("n_clusters: 3", 'n_clusters: "2"'),
                          "<experiment>:12: clusterers[0].n_clusters: '2' is not valid: a "
                          "number in quotes is text; write 2 without quotes"),
    "n_clusters quoted in a sweep": (("n_clusters: 3", "n_clusters: [3, '4']"),
                                     "<experiment>:12: clusterers[0].n_clusters: '4' is not "
                                     "valid: a number in quotes is text; write 4 without "
                                     "quotes"),
    "n_components quoted fraction": (("n_components: 5", "n_components: '0.9'"),
                                     "<experiment>:9: reducers[0].n_components: '0.9' is not "
                                     "valid: a number in quotes is text; write 0.9 without "
                                     "quotes"),
    "n_samples quoted": (("n_samples: 100", 'n_samples: "100"'),
                         "<experiment>:4: datasets[0].n_samples: '100' is not valid: a number "
                         "in quotes is text; write 100 without quotes"),
    "workers quoted": (("name: corpus", 'name: corpus\nexecutor: {workers: "2"}'),
                       "<experiment>:2: executor.workers: '2' is not valid: a number in quotes "
                       "is text; write 2 without quotes"),
    "seed quoted": (("name: corpus", "name: corpus\nseeds: [0, '1']"),
                    "<experiment>:2: seeds[1]: '1' is not valid: a number in quotes is text; "
                    "write 1 without quotes"),
    "tab before a key": (("    n_clusters: 3", "\tn_clusters: 3"),
                         "<experiment>:12: not valid YAML: a tab at line 12, column 1: YAML "
                         "indents with spaces"),
    "tab before a list item": (("  - plugin: pixels", "\t- plugin: pixels"),
                               "<experiment>:6: not valid YAML: a tab at line 6, column 1: "
                               "YAML indents with spaces"),
    "tab after a dash": (("  - plugin: kmeans", "  -\tplugin: kmeans"),
                         "<experiment>:11: not valid YAML: a tab at line 11, column 4: YAML "
                         "indents with spaces"),
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


def test_numbers_without_quotes_still_read_as_numbers(registry):
    """Only quotes are refused: YAML's own numbers, sweeps, ``auto``, text YAML leaves
    unread (``1e-1``: YAML 1.1 wants ``1.0e-1``) and ``--set`` values (parsed as YAML)
    are numbers as before."""
    sweep = parse_experiment(GOOD.replace("n_clusters: 3", "n_clusters: [2, 4, auto]"),
                             registry)
    assert [c.kwargs["n_clusters"] for c in sweep.clusterers] == [2, 4, "auto"]
    exponent = parse_experiment(GOOD.replace("n_components: 5", "n_components: 1e-1"),
                                registry)
    assert exponent.reducers[0].kwargs == {"n_components": 0.1}
    overridden = parse_experiment(GOOD, registry, overrides=[
        "clusterers.0.n_clusters=2", "executor.workers=2", "seeds=[0, 1]"])
    assert overridden.clusterers[0].kwargs == {"n_clusters": 2}
    assert (overridden.executor.workers, overridden.seeds) == (2, (0, 1))
    with pytest.raises(SpecError, match=r"clusterers\[0\]\.n_clusters: '2' is not valid: a "
                       "number in quotes is text; write 2 without quotes$"):
        parse_experiment(GOOD, registry, overrides=['clusterers.0.n_clusters="2"'])


def test_a_tab_names_the_file_line_and_column(registry, tmp_path):
    path = tmp_path / "tabbed.yaml"
    path.write_text(GOOD.replace("    n_components: 5", "\t\tn_components: 5"))
    with pytest.raises(SpecError) as raised:
        load_experiment(path, registry)
    assert str(raised.value) == (f"{path}:9: not valid YAML: a tab at line 9, column 1: "
                                 "YAML indents with spaces")


def test_a_grid_over_the_limit_is_refused_naming_the_confirmation(registry):
    sweep = list(range(2, MAX_COMBINATIONS + 3))
    experiment = parse_experiment(GOOD.replace("n_clusters: 3", f"n_clusters: {sweep}"),
                                  registry)
    with pytest.raises(SpecError, match=r"^corpus: 10,001 combinations, more than 10,000; "
                       r"check the sweeps, or confirm with --max-combinations 10001$"):
        check_grid_size(experiment)
    check_grid_size(experiment, limit=10_001)  # confirmed


#: an npy folder run as is; ``{name}``, ``{cache}``, ``{workers}`` as ``harness.TINY``
NPY = """\
name: {name}
datasets:
  - plugin: npy
    path: lenses
encoders:
  - plugin: pixels
clusterers:
  - plugin: kmeans
    n_clusters: 2
    n_init: 1
metrics: [silhouette]
map: null
verdict: null
cache: {cache}
executor: {{workers: {workers}}}
"""


@pytest.fixture
def lenses(tmp_path):
    """30 images, one ``.npy`` each; ``lens_03`` and ``lens_17`` hold a NaN pixel."""
    rng = np.random.default_rng(0)
    (tmp_path / "lenses").mkdir()
    for i in range(30):
        image = rng.normal(size=(16, 16)).astype(np.float32)
        if i in (3, 17):
            image[2, 5] = np.nan
        np.save(tmp_path / "lenses" / f"lens_{i:02d}.npy", image)
    return tmp_path


def test_nan_pixels_name_their_files_and_the_transform_that_replaces_them(lenses):
    result = harness.run(harness.write_tiny(lenses, "nans", template=NPY), cwd=lenses)
    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("FAILED")]
    assert line.endswith(
        ": encoder 'pixels' returned NaN or infinite values in 2 of 30 rows: the images of "
        "2 of 30 items hold NaN or infinite values: lens_03 (lenses/lens_03.npy), lens_17 "
        "(lenses/lens_17.npy); add the transform nan_fill to the dataset (transforms: "
        "[{plugin: nan_fill}]) to replace them")
    # What the message suggests is enough.
    mended = NPY.replace("    path: lenses\n", "    path: lenses\n    transforms: "
                         "[{{plugin: nan_fill}}]\n")
    result = harness.run(harness.write_tiny(lenses, "mended", template=mended), cwd=lenses)
    assert result.returncode == 0, result.stderr


def test_skipped_files_are_counted_at_the_end_of_the_run_with_their_list(lenses):
    (lenses / "lenses" / "broken.npy").write_bytes(b"not an array")
    np.save(lenses / "lenses" / "lens_03.npy", np.zeros((16, 16), dtype=np.float32))
    skipping = NPY.replace("    path: lenses\n", "    path: lenses\n    on_error: skip\n"
                           "    transforms: [{{plugin: nan_fill}}]\n")
    result = harness.run(harness.write_tiny(lenses, "skips", template=skipping), cwd=lenses)
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if "skipped (on_error" in line]
    found = re.fullmatch(r"2 items skipped \(on_error: skip\) from "
                         r"npy\[on_error=skip,path=lenses\] \+ nan_fill; the list, with why: "
                         r"(/\S+/skipped\.csv)", line)
    assert found, line
    with open(found[1], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["file"] for row in rows] == ["lenses/broken.npy", "lenses/lens_03.npy"]
    assert rows[0]["reason"].startswith("unreadable .npy")
    assert rows[1]["reason"] == "constant image (every value is 0)"
