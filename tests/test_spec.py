"""Experiment files: sweeps expand as documented; every bad file fails before anything
runs with one line naming the file, line and key, exit code 2 and no MLflow store."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cli, write_experiment

from clustergrid.errors import SpecError
from clustergrid.plan import make_plan
from clustergrid.spec import load_experiment, parse_experiment

QUICKSTART = Path(__file__).parents[1] / "experiments" / "quickstart.yaml"

VALID = """\
name: sweep
datasets:
  - plugin: digits
    n_samples: [100, 200]
    transforms:
      - plugin: normalize
        method: [minmax, zscore]
encoders:
  - plugin: pixels
  - plugin: pixels
    downsample: 2
reducers:
  - plugin: pca
    n_components: [2, 0.9]
clusterers:
  - plugin: kmeans
    n_clusters: [3, 4, 5]
metrics: [silhouette, ari]
"""


def test_quickstart_expands_into_its_grid(registry):
    experiment = load_experiment(QUICKSTART, registry)
    assert experiment.seeds == (0, 1, 2)
    assert [r.label() for r in experiment.reducers] == [
        "none", "pca[n_components=10]", "pca[n_components=30]"]
    assert [c.label() for c in experiment.clusterers] == [
        "kmeans[n_clusters=8]", "kmeans[n_clusters=10]", "kmeans[n_clusters=12]"]
    (choice,) = experiment.datasets
    assert [t.label() for t in choice.transforms] == ["normalize[method=minmax]"]
    assert experiment.executor.kind == "local" and experiment.executor.workers == 2
    assert experiment.tracking_uri is None


def test_sweeps_multiply_within_an_entry_and_add_across_entries(registry):
    experiment = parse_experiment(VALID, registry)
    assert len(experiment.datasets) == 4  # 2 sizes x 2 normalisations
    assert [e.label() for e in experiment.encoders] == ["pixels", "pixels[downsample=2]"]
    assert [r.kwargs["n_components"] for r in experiment.reducers] == [2, 0.9]
    assert len(experiment.clusterers) == 3
    assert [m.plugin for m in experiment.metrics] == ["silhouette", "ari"]


def test_dataset_transforms_run_before_global_ones(registry):
    text = VALID.replace("metrics:", "transforms:\n  - plugin: normalize\n    per_channel: true\n"
                         "metrics:")
    experiment = parse_experiment(text, registry)
    chain = experiment.datasets[0].transforms
    assert [t.label() for t in chain] == ["normalize[method=minmax]",
                                          "normalize[per_channel=True]"]


def test_a_list_valued_parameter_is_written_as_a_list_of_lists(registry):
    from clustergrid import Encoder, hookimpl

    class Layers(Encoder):
        """Takes a list of layer sizes."""

        name = "layers"

        def __init__(self, hidden: list[int] = (8,)):
            self.hidden = hidden

    class Plugin:
        @hookimpl
        def register_encoders(self, register):
            register(Layers)

    from clustergrid.registry import Registry

    registry = Registry.load(extra=[Plugin()])
    one = VALID.replace("  - plugin: pixels\n    downsample: 2", "  - plugin: layers\n"
                        "    hidden: [[64, 32]]")
    two = one.replace("[[64, 32]]", "[[64, 32], [128]]")
    assert [e.kwargs for e in parse_experiment(one, registry).encoders[1:]] == [
        {"hidden": (64, 32)}]
    assert [e.kwargs for e in parse_experiment(two, registry).encoders[1:]] == [
        {"hidden": (64, 32)}, {"hidden": (128,)}]


def test_a_mapping_parameter_is_one_hashable_value(registry):
    from clustergrid import Encoder, hookimpl
    from clustergrid.plan import make_plan
    from clustergrid.registry import Registry

    class Tiles(Encoder):
        """Takes a mapping."""

        name = "tiles"

        def __init__(self, tile: dict | None = None):
            self.tile = tile

    class Plugin:
        @hookimpl
        def register_encoders(self, register):
            register(Tiles)

    registry = Registry.load(extra=[Plugin()])
    text = VALID.replace("  - plugin: pixels\n    downsample: 2",
                         "  - plugin: tiles\n    tile: [{size: 64, stride: [32]}, {size: 32}]")
    experiment = parse_experiment(text, registry)
    tiles = [e.kwargs["tile"] for e in experiment.encoders[1:]]
    assert tiles == [{"size": 64, "stride": (32,)}, {"size": 32}]
    assert hash(tiles[0]) != hash(tiles[1])
    with pytest.raises(TypeError, match="read-only"):
        tiles[0]["size"] = 1
    steps = make_plan(experiment, registry).steps.values()
    # Three encoders (two mappings and pixels) on each of the four dataset chains.
    assert sum(step.stage == "encode" for step in steps) == 3 * len(experiment.datasets)


def test_metrics_default_to_every_registered_metric(registry):
    text = VALID.replace("metrics: [silhouette, ari]\n", "")
    names = {m.plugin for m in parse_experiment(text, registry).metrics}
    assert names == {info.name for info in registry.all("metric")}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  - plugin: pixels\n  - plugin: pixels\n", "  - plugin: pixles\n  - plugin: pixels\n",
         ":9: encoders[0].plugin: unknown encoder 'pixles' (known: autoencoder, "),
        ("metrics:", "colour: red\nmetrics:", ":18: colour: unknown key"),
        ("    downsample: 2", "    downsampel: 2",
         ":11: encoders[1].downsampel: unknown parameter of encoder 'pixels' "
         "(known: downsample, batch_size)"),
        ("n_clusters: [3, 4, 5]", "n_clusters: [3, many]",
         ":17: clusterers[0].n_clusters: 'many' is not valid: Input should be a valid integer"),
        ("method: [minmax, zscore]", "method: [minmax, robust]",
         ":7: datasets[0].transforms[0].method: 'robust' is not valid: "
         "Input should be 'minmax' or 'zscore'"),
        ("clusterers:\n  - plugin: kmeans\n    n_clusters: [3, 4, 5]\n", "clusterers: []\n",
         ":15: clusterers: must list at least one entry"),
        ("n_clusters: [3, 4, 5]", "n_clusters: []",
         ":17: clusterers[0].n_clusters: an empty list sweeps over nothing: the grid is empty"),
        ("name: sweep", "name: [sweep]", ":1: name: Input should be a valid string"),
        ("encoders:\n", "encoders:\n  - downsample: 3\n",
         ":9: encoders[0].plugin: Field required"),
        ("  - plugin: pca\n", "  - plugin: pca\n   bad: [\n", ":14: not valid YAML"),
    ],
)
def test_bad_experiment_file_gives_one_line_naming_the_problem(workdir, old, new, expected):
    assert old in VALID
    path = write_experiment(workdir, VALID.replace(old, new))
    result = cli("run", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"error: {path}{expected}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert not (workdir / "clustergrid-runs").exists()  # no store, no run


def test_every_mistake_of_a_file_is_listed_at_once_in_file_order(workdir):
    # Found by different checks (plugin parameters, the file's keys, plugin names,
    # bounds), which used to stop at the first one they met, out of file order.
    text = (VALID.replace("    downsample: 2", "    downsampel: 2")
            .replace("metrics:", "colour: red\nmetrics:")
            .replace("  - plugin: pca\n", "  - plugin: pcaa\n")
            .replace("n_clusters: [3, 4, 5]", "n_clusters: [3, 1]"))
    path = write_experiment(workdir, text)
    result = cli("run", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"error: {path}:11: encoders[1].downsampel: unknown parameter of encoder 'pixels' "
        "(known: downsample, batch_size)",
        f"error: {path}:13: reducers[0].plugin: unknown reducer 'pcaa' (known: none, pca, "
        "standardize, tsne, umap)",
        f"error: {path}:17: clusterers[0].n_clusters: 1 is not valid: Input should be "
        "greater than or equal to 2",
        f"error: {path}:18: colour: unknown key",
    ]
    assert not (workdir / "clustergrid-runs").exists()


def test_a_file_that_fails_as_a_whole_still_has_its_entries_checked(registry):
    text = VALID.replace("name: sweep", "name: [sweep]").replace("n_clusters: [3, 4, 5]",
                                                                 "n_clusters: [3, many]")
    with pytest.raises(SpecError) as raised:
        parse_experiment(text, registry)
    lines = str(raised.value).splitlines()
    assert [line.split(": ")[0] for line in lines] == ["<experiment>:1", "<experiment>:17"]
    assert "'many' is not valid" in lines[1]


def test_relative_store_and_cache_are_relative_to_the_file(workdir, registry):
    folder = workdir / "project"
    folder.mkdir()
    text = VALID + "tracking: {uri: runs}\ncache: runs/cache\n"
    path = write_experiment(folder, text)
    experiment = load_experiment(path.relative_to(workdir), registry)
    assert experiment.tracking_uri == str(folder / "runs")
    assert experiment.cache == str(folder / "runs" / "cache")
    database = parse_experiment(VALID + "tracking: {uri: 'sqlite:///db/m.db'}\n", registry,
                                source=folder / "e.yaml").tracking_uri
    assert database == f"sqlite:///{folder}/db/m.db"
    for uri in ("http://host:5000", "sqlite:////abs/m.db", "/abs/runs"):
        given = parse_experiment(VALID + f"tracking: {{uri: '{uri}'}}\n", registry,
                                 source=folder / "e.yaml").tracking_uri
        assert given == uri


def test_missing_file_gives_exit_code_2(workdir):
    result = cli("run", "nowhere.yaml")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: nowhere.yaml: no such experiment file"
    assert not (workdir / "clustergrid-runs").exists()


def test_a_file_that_is_not_a_mapping_is_rejected(registry):
    with pytest.raises(SpecError, match="an experiment file is a mapping"):
        parse_experiment("- just\n- a list\n", registry)


def test_the_report_map_is_umap_in_2d_seeded_unless_the_file_says(registry, monkeypatch):
    from clustergrid import spec

    monkeypatch.setattr(spec, "DEFAULT_MAP", {"plugin": "umap"})  # the real default
    default = parse_experiment(VALID, registry).map
    assert (default.plugin, default.kwargs) == ("umap", {"n_components": 2, "random_state": 0})
    chosen = parse_experiment(VALID + "map: {plugin: umap, n_neighbors: 30}\n", registry).map
    assert chosen.kwargs == {"n_neighbors": 30, "n_components": 2, "random_state": 0}
    pca = parse_experiment(VALID + "map: {plugin: pca, whiten: true}\n", registry).map
    assert pca.kwargs == {"whiten": True, "n_components": 2}  # PCA takes no seed
    assert parse_experiment(VALID + "map: null\n", registry).map is None
    plan = make_plan(parse_experiment(VALID + "map: null\n", registry), registry)
    assert "map" not in {step.stage for step in plan.steps.values()}


def test_a_map_is_one_reducer_not_a_sweep(registry):
    with pytest.raises(SpecError, match=r"map: one reducer draws the maps: give single values"):
        parse_experiment(VALID + "map: {plugin: pca, whiten: [true, false]}\n", registry)
    with pytest.raises(SpecError, match=r"map.plugin: unknown reducer 'umapp'"):
        parse_experiment(VALID + "map: {plugin: umapp}\n", registry)
