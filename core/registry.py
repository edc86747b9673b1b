"""Discovers plugins through the ``clustergrid`` entry-point group and indexes their components.

Built-in plugins are an entry point like any other. Each entry point is loaded on its
own, so a plugin that fails to import (or whose hook raises) is recorded as a
``LoadFailure`` with its traceback and every other plugin keeps working. Two
components with the same kind and name make that name ambiguous: using it is an error
naming both owners, while every other name stays usable.

``CLUSTERGRID_PLUGINS=builtin,mylab`` restricts loading to the named entry points.
"""

from __future__ import annotations

import importlib
import os
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

import pluggy

from clustergrid import hookspecs
from clustergrid.components import BASES, KINDS, Component
from clustergrid.errors import PluginError

GROUP = "clustergrid"
PLUGINS_ENV = "CLUSTERGRID_PLUGINS"

#: hook name -> component kind it registers
HOOKS = {f"register_{kind}s": kind for kind in KINDS}


@dataclass(frozen=True)
class ComponentInfo:
    """One registered component and where it came from."""

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
    #: modules registered in-process (not through entry points), re-imported by workers
    extra_modules: tuple[str, ...] = ()

    @classmethod
    def load(cls, extra: Iterable[ModuleType | Any] = ()) -> Registry:
        """Load every entry point of the group, then ``extra`` plugin objects (tests)."""
        registry = cls()
        manager = pluggy.PluginManager(GROUP)
        manager.add_hookspecs(hookspecs)
        wanted = _wanted_plugins()
        owners: dict[str, tuple[str, str]] = {}
        for entry_point in entry_points(group=GROUP):
            if wanted is not None and entry_point.name not in wanted:
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
        """The component ``name`` of ``kind``; a PluginError says why it is not there."""
        if (kind, name) in self.conflicts:
            owners = " and ".join(info.owner for info in self.conflicts[(kind, name)])
            raise PluginError(f"{kind} '{name}' is registered twice, by {owners}")
        try:
            return self.components[kind][name]
        except KeyError:
            pass
        known = ", ".join(sorted(self.components[kind])) or "none"
        message = f"unknown {kind} '{name}' (known: {known})"
        if self.failures:
            broken = ", ".join(sorted({failure.plugin for failure in self.failures}))
            message += f"; plugins that failed to load: {broken} (see `clustergrid plugins`)"
        raise PluginError(message)

    def all(self, kind: str | None = None) -> list[ComponentInfo]:
        kinds = [kind] if kind else list(KINDS)
        return [info for k in kinds for _, info in sorted(self.components[k].items())]


def _wanted_plugins() -> set[str] | None:
    value = os.environ.get(PLUGINS_ENV)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def load_registry(extra_modules: Iterable[str] = ()) -> Registry:
    """A registry from entry points plus importable plugin modules (used by workers)."""
    return Registry.load(extra=[importlib.import_module(name) for name in extra_modules])
