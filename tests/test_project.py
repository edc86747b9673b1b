"""Meta-tests that keep the hooks, the docs (README.md and the manual in docs/), the
packaging and CI in step."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml
from manual import PAGES, page
from manual import text as manual_text

from clustergrid import hookspecs
from clustergrid.cli import app
from clustergrid.public_data import DEFAULT_DATA_FOLDER

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()
#: the README and every page of the manual written by hand
MANUAL = manual_text()
HOOKS = [name for name in dir(hookspecs) if name.startswith("register_")]


def test_every_hook_is_documented_in_the_manual():
    assert HOOKS
    hooks = page("plugins.md")
    missing = [hook for hook in HOOKS if f"`{hook}`" not in hooks]
    assert missing == []


def test_every_hook_has_a_docstring():
    assert all(getattr(hookspecs, hook).__doc__ for hook in HOOKS)


def test_every_hook_is_exercised_by_a_test():
    tests = "".join(path.read_text() for path in (ROOT / "tests").glob("*.py")
                    if path.name != "test_project.py")
    assert [hook for hook in HOOKS if f"def {hook}" not in tests] == []


def test_every_builtin_component_is_documented(registry):
    """In the pages written by hand, beyond the reference generated from docstrings."""
    builtin = [info.name for info in registry.all() if info.plugin == "builtin"]
    assert [name for name in builtin if f"`{name}`" not in MANUAL] == []


def test_every_cli_command_is_in_the_manual():
    commands = [command.name or command.callback.__name__ for command in app.registered_commands]
    assert [c for c in commands if f"clustergrid {c}" not in MANUAL] == []


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for prefix, folder in config["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((prefix, *parts)))
    assert found <= listed


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "make test" in README
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test:.*\n(\t.*\n)*\t\$\(BIN\)/python -m pytest", makefile, re.M)
    assert "torch==2.13.0" in makefile


def test_every_shipped_experiment_validates_and_plans(registry, workdir, monkeypatch):
    import importlib.util

    from clustergrid.plan import make_plan
    from clustergrid.spec import load_experiment

    # multiband.yaml reads cubes its script writes into ./data/multiband: write a few
    script = ROOT / "experiments" / "make_multiband_cubes.py"
    spec = importlib.util.spec_from_file_location("make_multiband_cubes", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--n", "4", "--size", "16"])
    # gaia.yaml reads the table its script writes into ./data/gaia_like.fits
    script = ROOT / "experiments" / "make_gaia_table.py"
    spec = importlib.util.spec_from_file_location("make_gaia_table", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--n", "60"])
    files = sorted((ROOT / "experiments").glob("*.yaml"))
    assert {f.stem for f in files} >= {"quickstart", "cherenkov"}
    shared = ROOT.parent / "shared" / "data"
    for path in files:
        assert f"experiments/{path.name}" in MANUAL, f"{path.name} is not in the manual"
        experiment = load_experiment(path, registry)
        # A study of the real data beside the checkout reads it relative to the project's
        # folder; without that data it is only validated.
        reads_shared = "../shared/data" in json.dumps(yaml.safe_load(path.read_text()))
        if reads_shared and not shared.is_dir():
            continue
        # A study of a public dataset reads it where `clustergrid data fetch` puts it;
        # until it is fetched, the study is only validated.
        fetched = re.findall(re.escape(str(DEFAULT_DATA_FOLDER)) + r"/([\w-]+)",
                             json.dumps(yaml.safe_load(path.read_text())))
        if any(not (DEFAULT_DATA_FOLDER / name).expanduser().is_dir() for name in fetched):
            continue
        monkeypatch.chdir(ROOT if reads_shared else workdir)
        assert make_plan(experiment, registry).combinations, path


def test_every_image_exists_and_every_figure_is_shown():
    """Every local image of the README and the manual resolves from its page; the README
    shows one; every figure `make figures` writes is shown in the manual."""
    shown = set()
    for path in PAGES:
        images = re.findall(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)", path.read_text())
        local = [image for image in images if not re.match(r"[a-z][a-z0-9+.-]*:", image, re.I)]
        if path.name == "README.md":
            assert local, "the README shows no local image"
        files = [(path.parent / image.split("#")[0]).resolve() for image in local]
        assert [image for image, file in zip(local, files, strict=True)
                if not file.is_file()] == [], path
        shown.update(file.relative_to(ROOT).as_posix() for file in files)
    script = (ROOT / "experiments" / "figures" / "make_figures.sh").read_text()
    figures = re.findall(r"--montage\s+(\S+)", script)
    screenshots = re.findall(r'report_screenshots\.py\s+\S+\s+(\S+)', script)
    assert figures and screenshots == ["docs/figures"]
    taker = (ROOT / "experiments" / "figures" / "report_screenshots.py").read_text()
    figures += [f"docs/figures/{name}" for name in re.findall(r'"(report-[\w-]+\.png)"', taker)]
    assert [path for path in figures if path not in shown] == []
    # Under docs/, where the manual's build finds them.
    assert [path for path in shown if not path.startswith("docs/")] == []
