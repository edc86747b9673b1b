"""Checks of what a component class declares (its name, flags and parameters), which the
runner reads to name, hash, log and rebuild components before any of them runs."""

from __future__ import annotations

import inspect
from typing import Any

from clustergrid.testing.case import Case, installed_registry, is_number, same_value

#: the sizes a memory declaration is asked about: ``(n, d)``, ``n`` growing at each ``d``
MEMORY_SIZES = ((10, 4), (100, 4), (10_000, 4), (10, 512), (100, 512), (10_000, 512))


def declares_name(case: Case) -> None:
    """``name`` is a non-empty string without spaces or ``:`` and the docstring has a first
    line: experiment files refer to the name (``plugin:name`` when two plugins share it),
    ``clustergrid plugins`` shows the line."""
    name = getattr(case.cls, "name", None)
    if not isinstance(name, str) or not name or any(c.isspace() or c == ":" for c in name):
        raise case.fail(f"name {name!r} must be a non-empty string without spaces or ':'")
    if not case.cls.summary() or case.cls.__doc__ is None:
        raise case.fail("has no docstring: its first line is what `clustergrid plugins` shows")
    version = case.cls.version
    if version is not None and not isinstance(version, str):
        raise case.fail(f"version {version!r} must be a string (it is part of cache keys)")


def name_is_free(case: Case) -> None:
    """No other installed component of the same kind has this name: a name two plugins
    register is ambiguous, and experiment files must then spell it ``plugin:name``."""
    registry = installed_registry()
    infos = [registry.components[case.kind].get(case.cls.name),
             *registry.conflicts.get((case.kind, case.cls.name), [])]
    for info in infos:
        if info is not None and (info.cls.__module__, info.cls.__qualname__) != (
                case.cls.__module__, case.cls.__qualname__):
            raise case.fail(f"name '{case.cls.name}' is already taken by "
                            f"{info.cls.__module__}.{info.cls.__qualname__} of {info.owner}; "
                            "choose another name, or users must write plugin:name")


def declarations_valid(case: Case) -> None:
    """Class attributes hold allowed values: ``check_class`` passes (the registry calls it,
    so a bad direction fails the plugin's loading), flags are booleans, a metric's scope
    is "clustering" or "embedding"."""
    case.call("check_class()", case.cls.check_class)
    for flag in ("needs_labels", "row_wise"):
        if hasattr(case.cls, flag) and not isinstance(getattr(case.cls, flag), bool):
            raise case.fail(f"{flag} = {getattr(case.cls, flag)!r} must be True or False")
    scope = getattr(case.cls, "scope", "clustering")
    if case.kind == "metric" and scope not in ("clustering", "embedding"):
        raise case.fail(f"scope = {scope!r} must be 'clustering' or 'embedding'")


def parameters_are_keywords(case: Case) -> None:
    """``__init__`` takes named keyword parameters only: no ``*args``, ``**kwargs`` or
    positional-only ones, which experiment files could not set and ``get_params`` misses."""
    if case.cls.__init__ is object.__init__:
        return
    for parameter in list(inspect.signature(case.cls.__init__).parameters.values())[1:]:
        if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            raise case.fail(f"__init__ takes {parameter}; every parameter must be a named "
                            "keyword argument")


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    return isinstance(value, tuple) and all(_plain(item) for item in value)


def defaults_are_plain(case: Case) -> None:
    """Defaults are None, bools, numbers, strings or tuples of them: hashable (steps are
    keyed by their parameters) and what YAML and ``clustergrid plugins --json`` can write.
    A list or dict default would also be shared by every instance."""
    for name, parameter in case.cls.parameters().items():
        if parameter.default is not parameter.empty and not _plain(parameter.default):
            raise case.fail(f"parameter '{name}' defaults to {parameter.default!r}; defaults "
                            "must be None, bool, int, float, str or tuples of them")


def init_stores_parameters(case: Case) -> None:
    """``__init__`` stores each parameter under its own name, unchanged, and sets nothing
    else: the runner reads them back to hash, log and rebuild the component, and fitted
    state (ending in ``_``) belongs to ``fit``."""
    component = case.build()
    expected = set(case.cls.parameters())
    stored = set(getattr(component, "__dict__", {}))
    if stored - expected:
        raise case.fail(f"__init__ sets {sorted(stored - expected)}, which are not parameters; "
                        "__init__ must only store its parameters (set other state in fit)")
    for name, parameter in case.cls.parameters().items():
        if name not in stored:
            raise case.fail(f"__init__ does not store parameter '{name}' as self.{name}")
        given = case.params.get(name, parameter.default)
        if given is not parameter.empty and not same_value(getattr(component, name), given):
            raise case.fail(f"__init__ stores parameter '{name}' as "
                            f"{getattr(component, name)!r}, given {given!r}; store parameters "
                            "unchanged and validate or convert them in the methods")


def get_params_round_trip(case: Case) -> None:
    """``cls(**component.get_params())`` rebuilds an equal component: workers rebuild each
    step's components from the parameters the driver logged."""
    params = case.call("get_params()", case.build().get_params)
    again = case.call(f"{case.cls.__qualname__}(**get_params())", lambda: case.cls(**params))
    if not all(same_value(again.get_params()[k], v) for k, v in params.items()):
        raise case.fail(f"get_params() gives {params!r}, but rebuilding from it gives "
                        f"{again.get_params()!r}")


def memory_estimate_valid(case: Case) -> None:
    """``memory_estimate(n, d)`` is None (unknown, the default) or a finite, non-negative
    number of bytes, never smaller for more items at the same ``d``: the runner refuses
    a step whose estimate exceeds a worker's memory, so a wrong one refuses steps that fit
    or lets through steps that do not. Only parameters are read: nothing is fitted."""
    component = case.build()
    last: dict[int, float] = {}
    for n, d in MEMORY_SIZES:
        value = case.call(f"memory_estimate({n}, {d})", component.memory_estimate, n, d)
        if value is None:
            continue
        if isinstance(value, bool) or not is_number(value) or not 0 <= float(value) < float("inf"):
            raise case.fail(f"memory_estimate({n}, {d}) returned {value!r}; it must be None or "
                            "a non-negative number of bytes")
        if d in last and float(value) < last[d]:
            raise case.fail(f"memory_estimate({n}, {d}) = {value!r} is less than for fewer "
                            f"items ({last[d]!r}): memory must not shrink as n grows")
        last[d] = float(value)
