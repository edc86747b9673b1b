"""Plugin discovery: built-ins through the entry point, third parties, broken plugins,
duplicates, and no heavy import at discovery time."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import cli, install_fake_distribution

from clustergrid.errors import PluginError
from clustergrid.registry import Registry

LAB_PLUGIN = """
import numpy as np
from clustergrid import Encoder, hookimpl


class Brightness(Encoder):
    '''Mean and maximum brightness of each image.'''

    name = "brightness"

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def transform(self, images):
        flat = np.asarray(images).reshape(len(images), -1)
        return np.stack([flat.mean(1), flat.max(1)], axis=1) * self.scale


@hookimpl
def register_encoders(register):
    register(Brightness)
"""


def test_builtins_load_through_the_entry_point(registry):
    pixels = registry.get("encoder", "pixels")
    assert pixels.plugin == "builtin"
    assert pixels.distribution == "clustergrid"
    assert {"digits", "normalize", "pixels", "none", "pca", "kmeans", "silhouette", "ari"} <= {
        info.name for info in registry.all()
    }
    assert registry.failures == []


def test_third_party_distribution_is_discovered(fake_site):
    install_fake_distribution(fake_site, "lab-encoders", "fake_lab", LAB_PLUGIN, version="2.3")
    info = Registry.load().get("encoder", "brightness")
    assert (info.plugin, info.distribution, info.distribution_version) == (
        "lab-encoders", "lab-encoders", "2.3")
    assert info.version == "2.3"  # no version of its own: the distribution's
    assert list(info.cls.parameters()) == ["scale"]


def test_plugin_that_fails_to_import_is_reported_and_others_work(fake_site):
    install_fake_distribution(fake_site, "broken-plugin", "fake_broken",
                              "import numpy as np\nraise ImportError('needs libfoo')\n")
    install_fake_distribution(fake_site, "lab-encoders", "fake_lab", LAB_PLUGIN)
    registry = Registry.load()
    (failure,) = registry.failures
    assert failure.plugin == "broken-plugin"
    assert failure.distribution == "broken-plugin"
    assert failure.error == "ImportError: needs libfoo"
    assert "fake_broken.py" in failure.traceback  # the real traceback, not "not installed"
    assert registry.get("encoder", "brightness").name == "brightness"
    assert registry.get("encoder", "pixels").name == "pixels"
    with pytest.raises(PluginError, match="failed to load: broken-plugin"):
        registry.get("encoder", "missing")


def test_hook_that_raises_is_reported_without_hiding_other_hooks(fake_site):
    source = LAB_PLUGIN + "\n@hookimpl\ndef register_metrics(register):\n    1 / 0\n"
    install_fake_distribution(fake_site, "lab-encoders", "fake_lab", source)
    registry = Registry.load()
    assert [f.error for f in registry.failures] == ["ZeroDivisionError: division by zero"]
    assert registry.get("encoder", "brightness")
    assert registry.get("metric", "silhouette")


def test_registering_something_that_is_not_a_component_is_reported(fake_site):
    source = (
        "from clustergrid import hookimpl\n"
        "@hookimpl\ndef register_encoders(register):\n    register(dict)\n"
    )
    install_fake_distribution(fake_site, "odd-plugin", "fake_odd", source)
    (failure,) = Registry.load().failures
    assert failure.plugin == "odd-plugin"
    assert "not a subclass of clustergrid.Encoder" in failure.error


def test_duplicate_name_is_an_error_naming_both_owners(fake_site):
    clash = LAB_PLUGIN.replace('"brightness"', '"pixels"')
    install_fake_distribution(fake_site, "lab-encoders", "fake_lab", clash, version="2.3")
    registry = Registry.load()
    with pytest.raises(PluginError) as error:
        registry.get("encoder", "pixels")
    message = str(error.value)
    assert "plugin 'builtin' (clustergrid" in message
    assert "plugin 'lab-encoders' (lab-encoders 2.3)" in message
    assert message.endswith("write builtin:pixels or lab-encoders:pixels")
    # Every other name is still usable.
    assert registry.get("reducer", "pca").name == "pca"


LAB_KMEANS = LAB_PLUGIN + '''
from clustergrid import Clusterer


class OneCluster(Clusterer):
    """A lab's own "kmeans": every item in one cluster."""

    name = "kmeans"

    def fit_predict(self, X):
        return np.zeros(len(X), dtype=np.int64)


@hookimpl
def register_clusterers(register):
    register(OneCluster)
'''


def test_a_qualified_name_means_that_plugins_component(registry):
    kmeans = registry.get("clusterer", "kmeans")
    qualified = registry.get("clusterer", "builtin:kmeans")
    assert (qualified.cls, qualified.plugin) == (kmeans.cls, "builtin")
    assert qualified.name == "builtin:kmeans"  # the spelling asked for, carried on
    assert kmeans.qualified_name == qualified.qualified_name == "builtin:kmeans"
    with pytest.raises(PluginError, match=r"plugin 'builtin' registers no clusterer 'kmean' "
                                          r"\(its clusterers: .*kmeans"):
        registry.get("clusterer", "builtin:kmean")
    with pytest.raises(PluginError, match="no plugin 'lab' is loaded"):
        registry.get("clusterer", "lab:kmeans")


def test_a_third_party_duplicate_of_a_builtin_disables_nothing(fake_site):
    install_fake_distribution(fake_site, "lab-kmeans", "fake_lab_kmeans", LAB_KMEANS, version="0.2")
    registry = Registry.load()
    with pytest.raises(PluginError) as error:
        registry.get("clusterer", "kmeans")
    builtin = registry.get("clusterer", "builtin:kmeans")
    assert str(error.value) == (
        f"clusterer 'kmeans' is registered by {builtin.owner} and plugin 'lab-kmeans' "
        "(lab-kmeans 0.2): write builtin:kmeans or lab-kmeans:kmeans")
    assert builtin.cls.__module__.startswith("clustergrid.plugins")
    assert registry.get("clusterer", "lab-kmeans:kmeans").cls.__name__ == "OneCluster"
    # Every other component of both plugins keeps its bare name.
    assert registry.get("encoder", "brightness").plugin == "lab-kmeans"
    assert registry.get("clusterer", "hdbscan").plugin == "builtin"
    assert registry.failures == []


def test_a_grid_naming_builtin_kmeans_runs_beside_a_duplicate(workdir, fake_site):
    from conftest import write_experiment

    from clustergrid import runner
    from clustergrid.spec import load_experiment
    from clustergrid.tracking import Tracker

    install_fake_distribution(fake_site, "lab-kmeans", "fake_lab_kmeans", LAB_KMEANS)
    registry = Registry.load()
    path = write_experiment(workdir, """\
        name: qualified
        datasets:
          - plugin: digits
            n_samples: 120
        encoders: [{plugin: pixels}]
        reducers: [{plugin: pca, n_components: 4}]
        clusterers:
          - plugin: builtin:kmeans
            n_clusters: 3
            n_init: 1
          - plugin: lab-kmeans:kmeans
        metrics: [builtin:n_clusters, ari]
        executor: {workers: 2}
        """)
    summary = runner.run(load_experiment(path, registry), registry)  # workers reload plugins
    assert (summary.finished, summary.failed) == (2, [])
    runs = {run.data.params["clusterer"]: run
            for run in Tracker(None, "qualified").combination_runs()}
    assert set(runs) == {"builtin:kmeans", "lab-kmeans:kmeans"}  # what the file says
    assert runs["builtin:kmeans"].data.params["clusterer.n_clusters"] == "3"
    assert runs["builtin:kmeans"].data.metrics["n_clusters"] == 3  # logged by its own name
    assert runs["lab-kmeans:kmeans"].data.metrics["n_clusters"] == 1
    assert "version.clusterer.lab-kmeans:kmeans" in runs["lab-kmeans:kmeans"].data.tags


def test_environment_variable_restricts_loading(fake_site, monkeypatch):
    install_fake_distribution(fake_site, "lab-encoders", "fake_lab", LAB_PLUGIN)
    monkeypatch.setenv("CLUSTERGRID_PLUGINS", "lab-encoders")
    registry = Registry.load()
    assert [info.name for info in registry.all()] == ["brightness"]
    monkeypatch.delenv("CLUSTERGRID_PLUGINS")
    monkeypatch.setenv("CLUSTERGRID_SKIP_PLUGINS", "lab-encoders")
    names = {info.name for info in Registry.load().all()}
    assert "pixels" in names and "brightness" not in names


def test_discovery_imports_no_heavy_library():
    code = (
        "import sys\n"
        "from clustergrid.registry import Registry\n"
        "Registry.load()\n"
        "import clustergrid.cli\n"
        "heavy = {'sklearn', 'torch', 'mlflow', 'umap', 'hdbscan', 'transformers', 'pandas'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_plugins_command_lists_third_party_and_failures(fake_site):
    install_fake_distribution(fake_site, "lab-encoders", "fake_lab", LAB_PLUGIN, version="2.3")
    install_fake_distribution(fake_site, "broken-plugin", "fake_broken", "raise RuntimeError('x')")
    result = cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    brightness = next(c for c in data["components"] if c["name"] == "brightness")
    assert brightness == {
        "kind": "encoder", "name": "brightness", "plugin": "lab-encoders",
        "distribution": "lab-encoders", "version": "2.3", "parameters": {"scale": 1.0},
        "doc": "Mean and maximum brightness of each image.",
    }
    assert [(f["plugin"], f["error"]) for f in data["failures"]] == [
        ("broken-plugin", "RuntimeError: x")]
    table = cli("plugins", "--kind", "encoder")
    assert "brightness" in table.stdout and "kmeans" not in table.stdout
    assert "FAILED TO LOAD plugin 'broken-plugin'" in table.stderr


def test_plugins_command_rejects_unknown_kind():
    result = cli("plugins", "--kind", "encoders")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: unknown kind 'encoders' (kinds: dataset, transform, encoder, reducer, "
        "clusterer, metric)")
