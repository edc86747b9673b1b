"""Discovers plugins through the ``clustergrid`` entry-point group and indexes their components.

Built-in plugins are an entry point like any other. Each entry point is loaded on its
own, so a plugin that fails to import (or whose hook raises) is recorded as a
``LoadFailure`` with its traceback and every other plugin keeps working.

A component is asked for by its name (``kmeans``) or by its qualified name, the plugin's
entry-point name, a colon and its name (``builtin:kmeans``), which always means that
plugin's component. When several plugins register the same kind and name, the bare name
is an error that spells out each qualified name; no plugin's components are disabled.

``CLUSTERGRID_PLUGINS=builtin,mylab`` restricts loading to the named entry points;
``CLUSTERGRID_SKIP_PLUGINS=mylab`` loads every entry point but those.
"""

from __future__ import annotations

import importlib
import os
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

import pluggy

from clustergrid import hookspecs
from clustergrid.components import BASES, KINDS, Component
from clustergrid.errors import PluginError

GROUP = "clustergrid"
PLUGINS_ENV = "CLUSTERGRID_PLUGINS"
SKIP_PLUGINS_ENV = "CLUSTERGRID_SKIP_PLUGINS"
#: separates a plugin's entry-point name from a component's name in a qualified name
QUALIFIER = ":"

#: hook name -> component kind it registers
HOOKS = {f"register_{kind}s": kind for kind in KINDS}


@dataclass(frozen=True)
class ComponentInfo:
    """One registered component and where it came from.

    ``name`` is the spelling it was asked for by: its own name, or its qualified name when
    ``Registry.get`` was given that, so an experiment keeps (and logs) what its file says.
    """

    kind: str
    name: str
    cls: type[Component]
    plugin: str
    distribution: str
    distribution_version: str

    @property
    def version(self) -> str:
        """What cache keys depend on: the component's own ``version`` when it declares
        one, else its distribution's (so upgrading a plugin package recomputes its steps)."""
        return self.cls.version or self.distribution_version

    @property
    def owner(self) -> str:
        return f"plugin '{self.plugin}' ({self.distribution} {self.distribution_version})"

    @property
    def qualified_name(self) -> str:
        """``plugin:name``, which means this component even when another plugin registers
        the same name."""
        return f"{self.plugin}{QUALIFIER}{self.cls.name}"


@dataclass(frozen=True)
class LoadFailure:
    """A plugin (or one of its hooks) that raised while loading."""

    plugin: str
    distribution: str
    error: str
    traceback: str


@dataclass
class Registry:
    """All components by kind and name, plus what failed to load."""

    components: dict[str, dict[str, ComponentInfo]] = field(
        default_factory=lambda: {kind: {} for kind in KINDS}
    )
    conflicts: dict[tuple[str, str], list[ComponentInfo]] = field(default_factory=dict)
    failures: list[LoadFailure] = field(default_factory=list)
    #: entry-point (or in-process) names of the plugins that loaded
    plugins: list[str] = field(default_factory=list)
    #: modules registered in-process (not through entry points), re-imported by workers
    extra_modules: tuple[str, ...] = ()

    @classmethod
    def load(cls, extra: Iterable[ModuleType | Any] = ()) -> Registry:
        """Load every entry point of the group, then ``extra`` plugin objects (tests)."""
        registry = cls()
        manager = pluggy.PluginManager(GROUP)
        manager.add_hookspecs(hookspecs)
        wanted = _listed_plugins(PLUGINS_ENV)
        skipped = _listed_plugins(SKIP_PLUGINS_ENV) or set()
        owners: dict[str, tuple[str, str]] = {}
        for entry_point in entry_points(group=GROUP):
            if entry_point.name in skipped or (wanted is not None
                                               and entry_point.name not in wanted):
                continue
            dist = entry_point.dist
            dist_name, dist_version = (dist.name, dist.version) if dist else ("unknown", "0")
            try:
                plugin = entry_point.load()
                manager.register(plugin, name=entry_point.name)
            except Exception as exc:  # a broken plugin must not take the others down
                registry._fail(entry_point.name, dist_name, exc)
                continue
            owners[entry_point.name] = (dist_name, dist_version)
        extra_modules = []
        for plugin in extra:
            name = getattr(plugin, "__name__", type(plugin).__name__)
            try:
                manager.register(plugin, name=name)
            except Exception as exc:
                registry._fail(name, "in-process", exc)
                continue
            owners[name] = ("in-process", "0")
            if isinstance(plugin, ModuleType):
                extra_modules.append(name)
        registry.extra_modules = tuple(extra_modules)
        registry.plugins = list(owners)
        for hook_name, kind in HOOKS.items():
            # Call each implementation alone: one raising hook must not hide the others,
            # and each registered class must be traceable to the plugin that owns it.
            for impl in getattr(manager.hook, hook_name).get_hookimpls():
                dist_name, dist_version = owners[impl.plugin_name]

                def register(component, _plugin=impl.plugin_name, _kind=kind,
                             _dist=dist_name, _version=dist_version):
                    registry._add(_kind, component, _plugin, _dist, _version)

                try:
                    impl.function(register=register)
                except Exception as exc:
                    registry._fail(impl.plugin_name, dist_name, exc)
        return registry

    def _fail(self, plugin: str, distribution: str, exc: BaseException) -> None:
        self.failures.append(
            LoadFailure(
                plugin=plugin,
                distribution=distribution,
                error=f"{type(exc).__name__}: {exc}",
                traceback="".join(traceback.format_exception(exc)),
            )
        )

    def _add(self, kind: str, component: type, plugin: str, dist: str, version: str) -> None:
        base = BASES[kind]
        if not (isinstance(component, type) and issubclass(component, base)):
            raise TypeError(
                f"register_{kind}s got {component!r}, which is not a subclass of "
                f"clustergrid.{base.__name__}"
            )
        name = getattr(component, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"{component.__qualname__} has no string attribute 'name'")
        if QUALIFIER in name:
            raise TypeError(f"{component.__qualname__}.name {name!r} contains "
                            f"{QUALIFIER!r}, which separates a plugin from a component name")
        component.check_class()
        info = ComponentInfo(
            kind=kind,
            name=name,
            cls=component,
            plugin=plugin,
            distribution=dist,
            distribution_version=version,
        )
        if (kind, name) in self.conflicts:
            self.conflicts[(kind, name)].append(info)
        elif name in self.components[kind]:
            self.conflicts[(kind, name)] = [self.components[kind].pop(name), info]
        else:
            self.components[kind][name] = info

    def get(self, kind: str, name: str) -> ComponentInfo:
        """The component ``name`` (or ``plugin:name``) of ``kind``; a PluginError says why
        it is not there."""
        plugin, qualified, own_name = name.rpartition(QUALIFIER)
        if qualified:
            return self._get_qualified(kind, plugin, own_name)
        if (kind, name) in self.conflicts:
            infos = sorted(self.conflicts[(kind, name)],
                           key=lambda info: (info.plugin != "builtin", info.plugin))
            owners = _joined([info.owner for info in infos], "and")
            spellings = _joined([info.qualified_name for info in infos], "or")
            raise PluginError(f"{kind} '{name}' is registered by {owners}: write {spellings}")
        try:
            return self.components[kind][name]
        except KeyError:
            pass
        known = ", ".join(sorted(self.components[kind])) or "none"
        raise PluginError(f"unknown {kind} '{name}' (known: {known}){self._failed_hint()}")

    def _get_qualified(self, kind: str, plugin: str, name: str) -> ComponentInfo:
        spelling = f"{plugin}{QUALIFIER}{name}"
        owned = [info for info in self._registered(kind) if info.plugin == plugin]
        found = [info for info in owned if info.name == name]
        if len(found) == 1:
            # Carries the qualified spelling on: spec, labels and MLflow params keep it.
            return replace(found[0], name=spelling)
        if found:
            raise PluginError(f"{kind} '{spelling}' is registered {len(found)} times by "
                              f"{found[0].owner}")
        if plugin in self.plugins:
            names = ", ".join(sorted(info.name for info in owned)) or "none"
            why = f"plugin '{plugin}' registers no {kind} '{name}' (its {kind}s: {names})"
        else:
            why = f"no plugin '{plugin}' is loaded (plugins: {', '.join(self.plugins) or 'none'})"
        raise PluginError(f"unknown {kind} '{spelling}': {why}{self._failed_hint()}")

    def _registered(self, kind: str) -> list[ComponentInfo]:
        """Every component of ``kind``, those whose bare name is ambiguous included."""
        ambiguous = [info for (k, _), infos in self.conflicts.items() if k == kind
                     for info in infos]
        return [*self.components[kind].values(), *ambiguous]

    def _failed_hint(self) -> str:
        if not self.failures:
            return ""
        broken = ", ".join(sorted({failure.plugin for failure in self.failures}))
        return f"; plugins that failed to load: {broken} (see `clustergrid plugins`)"

    def all(self, kind: str | None = None) -> list[ComponentInfo]:
        kinds = [kind] if kind else list(KINDS)
        return [info for k in kinds for _, info in sorted(self.components[k].items())]


def unqualified(name: str) -> str:
    """A component's own name from what it is asked for by: ``kmeans`` for ``builtin:kmeans``
    or ``kmeans``."""
    return name.rpartition(QUALIFIER)[2]


def _listed_plugins(variable: str) -> set[str] | None:
    """The comma-separated entry-point names in environment ``variable``; None if unset."""
    value = os.environ.get(variable)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _joined(things: list[str], last: str) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return f" {last} ".join([", ".join(things[:-1]), things[-1]] if len(things) > 2 else things)


def load_registry(extra_modules: Iterable[str] = ()) -> Registry:
    """A registry from entry points plus importable plugin modules (used by workers)."""
    return Registry.load(extra=[importlib.import_module(name) for name in extra_modules])
