"""The layers of the source tree: the core never imports a plugin (the measurements it
needs are its own, ``clustergrid.morphology``), and every module directly under
``plugins/<kind>/`` is a component, the shared machinery living in ``plugins/support/``;
within the core, the command line sits above everything, and the readers of results
(``results``, the report, ``labels``) and the store sit apart from the engine that runs
a grid (docs/architecture.md, "Layers")."""

from __future__ import annotations

import ast
from pathlib import Path

from clustergrid.components import KINDS
from clustergrid.registry import Registry

ROOT = Path(__file__).parents[1]
CORE = ROOT / "core"
PLUGINS = ROOT / "plugins"
PLUGINS_PACKAGE = "clustergrid.plugins"
#: the sub-package of plugins/ that holds what the components share
SUPPORT = "support"


def plugin_imports(source: str) -> list[tuple[int, str]]:
    """``(line, module)`` of each import in ``source`` of ``clustergrid.plugins`` or a module
    under it: ``import``, ``from ... import`` (``from clustergrid import plugins`` too) and
    ``importlib.import_module`` or ``__import__`` of a constant name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) \
                and ast.unparse(node.func) in ("importlib.import_module", "import_module",
                                               "__import__"):
            names = [node.args[0].value]
        else:
            continue
        plugins = [name for name in names
                   if name == PLUGINS_PACKAGE or name.startswith(f"{PLUGINS_PACKAGE}.")]
        if plugins:
            found.append((node.lineno, plugins[-1]))
    return found


def test_plugin_imports_finds_every_spelling():
    source = "\n".join([
        "import clustergrid.plugins.encoders.morphology",
        "from clustergrid.plugins.encoders import morphology",
        "from clustergrid import plugins",
        "def f():\n    import importlib\n    importlib.import_module('clustergrid.plugins.x')",
        "from clustergrid import morphology",
        "import clustergrid.pluginsx",
        "from clustergrid.registry import Registry",
    ])
    assert [line for line, _ in plugin_imports(source)] == [1, 2, 3, 6]


def test_core_imports_no_plugin():
    """The core's layers end above the plugins: a module of core/ importing one would make
    the core depend on a built-in that a user may not load (``CLUSTERGRID_PLUGINS``)."""
    offenders = [f"{path.relative_to(ROOT)}:{line} imports {name}"
                 for path in sorted(CORE.rglob("*.py"))
                 for line, name in plugin_imports(path.read_text())]
    assert offenders == []


def builtin_modules(registry: Registry) -> set[str]:
    """The modules that define a component the built-in plugin registers."""
    infos = [*registry.all(), *(info for infos in registry.conflicts.values() for info in infos)]
    return {info.cls.__module__ for info in infos if info.plugin == "builtin"}


def test_the_builtin_plugin_loads(registry):
    assert [failure for failure in registry.failures if failure.plugin == "builtin"] == []


def test_every_module_under_a_kind_registers_a_component(registry):
    """A module directly under ``plugins/<kind>/`` defines a registered component; one that
    only helps others belongs in ``plugins/support/``."""
    registered = builtin_modules(registry)
    helpers = [str(path.relative_to(ROOT))
               for kind in KINDS for path in sorted((PLUGINS / f"{kind}s").glob("*.py"))
               if path.name != "__init__.py"
               and f"{PLUGINS_PACKAGE}.{kind}s.{path.stem}" not in registered]
    assert helpers == []


def test_support_registers_no_component(registry):
    registered = builtin_modules(registry)
    modules = {f"{PLUGINS_PACKAGE}.{SUPPORT}.{path.stem}"
               for path in (PLUGINS / SUPPORT).glob("*.py") if path.name != "__init__.py"}
    assert modules
    assert sorted(modules & registered) == []


def test_plugins_holds_only_kinds_and_support():
    folders = {path.name for path in PLUGINS.iterdir()
               if path.is_dir() and (path / "__init__.py").exists()}
    assert folders == {*(f"{kind}s" for kind in KINDS), SUPPORT}
    assert sorted(path.name for path in PLUGINS.glob("*.py")) == ["__init__.py"]


# The layers of the core (docs/architecture.md, "Layers"): the command line above
# everything; the engine that runs a grid; the readers of its results; the store.
ENGINE = ("clustergrid.runner", "clustergrid.plan", "clustergrid.executor", "clustergrid.costs")
READERS = ("clustergrid.results", "clustergrid.verdict", "clustergrid.ranking",
           "clustergrid.export", "clustergrid.report")
STORE = ("clustergrid.record", "clustergrid.tracking", "clustergrid.locations")
CLI = ("clustergrid.cli",)


def module_name(path: Path) -> str:
    parts = path.relative_to(CORE).with_suffix("").parts
    return ".".join(("clustergrid", *(parts[:-1] if parts[-1] == "__init__" else parts)))


def imported_modules(source: str, package: str) -> set[str]:
    """Every module ``source`` imports when it runs (in functions too, not for type
    checkers alone), absolute names; ``from a import b`` counts as ``a`` and ``a.b``."""
    tree = ast.parse(source)
    for node in ast.walk(tree):  # ``if TYPE_CHECKING:`` imports are annotations only
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            node.body = []
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[:len(package.split(".")) + 1 - node.level],
                                 *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def within(name: str, layer: tuple[str, ...]) -> bool:
    return any(name == top or name.startswith(f"{top}.") for top in layer)


def layer_violations(layer: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    """``module -> import`` for each import of a module of ``forbidden`` by one of ``layer``."""
    found = []
    for path in sorted(CORE.rglob("*.py")):
        name = module_name(path)
        if not within(name, layer):
            continue
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found += [f"{name} -> {target}" for target in
                  sorted(imported_modules(path.read_text(), package))
                  if within(target, forbidden) and not within(target, layer)]
    return found


def test_imported_modules_reads_every_form():
    source = ("import clustergrid.runner\nfrom clustergrid import plan\n"
              "def f():\n    from ..executor import scheduler\n"
              "if TYPE_CHECKING:\n    from clustergrid.costs import x\n")
    found = imported_modules(source, "clustergrid.report")
    assert found >= {"clustergrid.runner", "clustergrid.plan", "clustergrid.executor.scheduler"}
    assert not any(name.startswith("clustergrid.costs") for name in found)


def test_the_command_line_is_above_everything():
    everything = tuple({module_name(p) for p in CORE.rglob("*.py")} - set(CLI))
    assert layer_violations(everything, CLI) == []


def test_readers_never_import_the_engine():
    assert layer_violations(READERS, ENGINE + CLI) == []


def test_the_store_imports_neither_the_engine_nor_its_readers():
    assert layer_violations(STORE, ENGINE + READERS + CLI) == []


def test_reading_commands_load_no_engine_in_a_fresh_interpreter(grid, tmp_path):
    """``report``, ``results`` and ``labels`` on a store, each in its own interpreter: the
    modules it loaded include none of the runner, the planner or the executor."""
    import json
    import subprocess
    import sys

    folder, experiment, _ = grid
    store = ["--tracking-uri", str(folder)]
    commands = {
        "results": ["results", experiment.name, *store],
        "report": ["report", experiment.name, "-o", str(tmp_path / "r.html"), *store],
        "labels": ["labels", experiment.name, "-p", "1", "--seed", "0", "-o",
                   str(tmp_path / "l.csv"), *store],
    }
    probe = ("import json, sys\nfrom clustergrid.cli import main\nsys.argv = ['clustergrid', "
             "*json.loads(sys.argv[1])]\ntry:\n    main()\nexcept SystemExit as exit:\n"
             "    assert not exit.code, exit.code\nprint(json.dumps(sorted(m for m in "
             "sys.modules if m.startswith('clustergrid'))))")
    for command, arguments in commands.items():
        done = subprocess.run([sys.executable, "-c", probe, json.dumps(arguments)],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        loaded = json.loads(done.stdout.strip().splitlines()[-1])
        assert "clustergrid.results" in loaded, command  # it did read the store
        assert [m for m in loaded if within(m, ENGINE)] == [], command
