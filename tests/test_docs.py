"""The manual (docs/, mkdocs.yml) and the README: the site builds with no warning, every
YAML example is a valid experiment file, every command is one the CLI accepts (the
quickstart's run at a reduced size, and the cheap ones for real), and no page sends a
user outside the repository."""

from __future__ import annotations

import importlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from manual import DOCS, PAGES, README, ROOT, code_blocks, page, python_block

from clustergrid.registry import Registry
from clustergrid.spec import ExperimentFile, load_experiment, parse_experiment
from clustergrid.stages import STAGES

#: what a YAML example that shows only part of a file is completed with
COMPLETION = {
    "name": "example",
    "datasets": [{"plugin": "digits"}],
    "encoders": [{"plugin": "pixels"}],
    "clusterers": [{"plugin": "kmeans"}],
}


def _label(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _commands() -> list[tuple[str, list[str]]]:
    """``(page, arguments)`` of every ``clustergrid`` command in the pages' bash blocks:
    continuation lines joined, one command per ``&&``, comments dropped."""
    found = []
    for path, code in code_blocks("bash"):
        for line in code.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words[:1] == ["clustergrid"]:
                    found.append((_label(path), words[1:]))
    return found


COMMANDS = _commands()
YAML_BLOCKS = [(_label(path), code) for path, code in code_blocks("yaml")]


def test_the_manual_builds_without_a_warning(tmp_path):
    """`make docs`, as CI runs it: strict, so a broken link or anchor fails; the hook
    writes a reference page per kind with every built-in component."""
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr
    registry = Registry.load()
    for kind in ("dataset", "transform", "encoder", "reducer", "clusterer", "metric"):
        html = (site / "components" / f"{kind}s" / "index.html").read_text()
        names = [info.name for info in registry.all(kind)]
        assert names
        assert [name for name in names if f'id="{re.sub(r"[^a-z0-9]+", "-", name)}"'
                not in html] == [], kind
    assert (site / "figures" / "report-top.png").is_file()


def test_the_reference_shows_parameters_and_docstrings():
    from clustergrid.reference import pages

    kmeans = pages()["components/clusterers.md"].split("## kmeans", 1)[1].split("\n## ")[0]
    assert "- `n_clusters` = `8`: `Union[Annotated[int, Ge(ge=2)], Literal['auto']]`" in kmeans
    assert "k-means (scikit-learn, k-means++ initialisation)" in kmeans


def test_no_page_sends_a_user_outside_the_repository():
    for path in PAGES:
        text = path.read_text()
        assert "../shared" not in text and "/work/" not in text, _label(path)


def test_the_readme_is_short_and_points_to_the_manual():
    readme = README.read_text()
    assert len(readme.splitlines()) <= 250
    assert "make docs" in readme
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert links and [link for link in links if not (ROOT / link).is_file()] == []
    linked = {(ROOT / link).resolve() for link in links}
    pages = {path.resolve() for path in DOCS.rglob("*.md")}
    assert pages - linked == set(), "every page of the manual is linked from the README"


@pytest.mark.parametrize("name", ["README.md", "docs/index.md"])
def test_the_quickstart_shown_is_the_file(name):
    (shown,) = [code for path, code in code_blocks("yaml", [ROOT / name])
                if code.startswith("name: quickstart")]
    quickstart = ROOT / "experiments" / "quickstart.yaml"
    assert yaml.safe_load(shown) == yaml.safe_load(quickstart.read_text())


@pytest.fixture(scope="module")
def lab_registry(tmp_path_factory):
    """The built-ins and the manual's plugin of each kind, which its examples use."""
    folder = tmp_path_factory.mktemp("lab")
    (folder / "lab_plugin.py").write_text(python_block("# lab_plugin.py"))
    sys.path.insert(0, str(folder))
    try:
        sys.modules.pop("lab_plugin", None)
        yield Registry.load(extra=[importlib.import_module("lab_plugin")])
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("lab_plugin", None)


@pytest.mark.parametrize(("name", "code"), YAML_BLOCKS,
                         ids=[f"{name}-{i}" for i, (name, _) in enumerate(YAML_BLOCKS)])
def test_every_yaml_example_is_a_valid_experiment_file(name, code, lab_registry):
    """A whole file is parsed as it is; a part of one (an `encoders:` list, say) after
    completing it with a dataset, an encoder and a clusterer."""
    raw = yaml.safe_load(code)
    assert isinstance(raw, dict), f"{name}: a YAML example is (part of) an experiment file"
    assert set(raw) <= set(ExperimentFile.model_fields), name
    text = code if set(COMPLETION) <= set(raw) else yaml.safe_dump({**COMPLETION, **raw})
    assert parse_experiment(text, lab_registry).grid_size >= 1


@pytest.mark.parametrize(("name", "args"), COMMANDS,
                         ids=[f"{name}-{' '.join(args)[:40]}" for name, args in COMMANDS])
def test_every_command_is_valid(name, args, registry):
    """The CLI parses it as written: the command exists and so do its options, with
    values of the right type. A `run` of a shipped experiment file also validates the
    file with its `--set` changes."""
    from typer.main import get_command

    from clustergrid.cli import app

    group = get_command(app)
    with group.make_context("clustergrid", list(args), resilient_parsing=False) as context:
        command_name, command, rest = group.resolve_command(context, list(args))
        assert command is not None, f"{name}: clustergrid {command_name}"
        with command.make_context(command_name, rest, parent=context) as sub:
            params = sub.params
    if command_name == "run" and (ROOT / params["file"]).is_file():
        load_experiment(ROOT / params["file"], registry, overrides=params["overrides"] or ())


def test_every_stage_of_the_plan_is_in_the_architecture():
    architecture = page("architecture.md")
    assert f"**{len(STAGES)} stages" in architecture
    assert [stage.name for stage in STAGES if f"`{stage.name}`" not in architecture] == []


def test_the_inspect_examples_run(tmp_path):
    """`clustergrid inspect` as the manual gives it, for real: it is cheap."""
    from conftest import cli

    (tmp_path / "experiments").symlink_to(ROOT / "experiments")
    inspections = [args for _, args in COMMANDS if args[0] == "inspect"]
    assert inspections
    for args in inspections:
        result = cli(*args, cwd=tmp_path)
        assert result.returncode == 0, (args, result.stderr)
    assert (tmp_path / "galaxies.png").is_file()


@pytest.mark.slow
def test_the_quickstart_commands_run(tmp_path, monkeypatch):
    """The quickstart's commands as the manual gives them, for real, after a run of the
    quickstart at a reduced size (one reducer, two values of k, two seeds, 300 digits)."""
    from typer.testing import CliRunner

    from clustergrid.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLUSTERGRID_TRACKING_URI", raising=False)
    (tmp_path / "experiments").symlink_to(ROOT / "experiments")
    smaller = ["--set", "datasets.0.n_samples=300", "--set", "seeds=[0, 1]",
               "--set", "reducers=[{plugin: pca, n_components: 10}]",
               "--set", "clusterers.0.n_clusters=[8, 10]", "--set", "map={plugin: pca}",
               "--set", "verdict={null_draws: 2, resamples: 2}"]
    runner = CliRunner()
    commands = [args for _, args in COMMANDS if _of_the_quickstart(args)]
    assert commands[0] == ["run", "experiments/quickstart.yaml"]
    done = set()
    for args in commands:
        if tuple(args) in done:
            continue
        done.add(tuple(args))
        result = runner.invoke(app, args + smaller if args[0] == "run" else args)
        assert result.exit_code == 0, (args, result.output)
    assert (tmp_path / "clusters.fits").is_file() and (tmp_path / "report.html").is_file()


def _of_the_quickstart(args: list[str]) -> bool:
    """A command about the quickstart's runs, or about the store they are in."""
    if args == ["experiments"]:
        return True
    return (args[0] in ("run", "results", "report", "labels") and len(args) > 1
            and Path(args[1]).stem == "quickstart")
