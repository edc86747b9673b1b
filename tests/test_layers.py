"""The layers of the source tree: the core never imports a plugin (the measurements it
needs are its own, ``clustergrid.morphology``), and every module directly under
``plugins/<kind>/`` is a component, the shared machinery living in ``plugins/support/``."""

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
