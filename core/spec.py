"""Experiment files: YAML, validated completely before anything runs.

Every error names the file, the line and the key path (``encoders[0].n_components``);
a file with several mistakes gets them all in one SpecError, a line each, in file order.

Sweeps: a list value is a sweep over its items. A parameter whose value is itself a
list is written as a list of lists: ``hidden: [[64, 32]]`` is one value, ``hidden:
[[64, 32], [128, 64]]`` sweeps two. ``n_components: [10, 30]`` sweeps two integers.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import re
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from clustergrid import names, symmetry
from clustergrid.cards import DESCRIPTORS, NUISANCES, is_descriptor
from clustergrid.errors import PluginError, SpecError, listing
from clustergrid.registry import Registry


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComponentEntry(BaseModel):
    """``{plugin: name, <param>: value-or-sweep, ...}``; unknown params are caught later,
    against the plugin's own signature."""

    model_config = ConfigDict(extra="allow")
    plugin: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class DatasetEntry(ComponentEntry):
    transforms: list[ComponentEntry] = Field(default_factory=list)


class ExecutorConfig(_Model):
    """``local``: serial or a process pool. ``dask``: a Dask cluster at ``address``, or a
    LocalCluster of ``workers`` processes started and stopped with the run."""

    kind: Literal["local", "dask"] = "local"
    workers: int = Field(1, ge=1)
    address: str | None = None
    #: times a step is retried when its Dask worker dies before it is recorded as failed
    retries: int = Field(1, ge=0)


class TrackingConfig(_Model):
    uri: str | None = None


class VerdictConfig(_Model):
    """How much evidence the label-free verdict gathers (see ``clustergrid.verdict``)."""

    #: structureless reference datasets each pipeline is fitted on
    null_draws: int = Field(5, ge=2)
    #: subsample refits of each combination, for its clusterwise stability
    resamples: int = Field(5, ge=1)
    #: share of the items in each subsample (drawn without replacement)
    fraction: float = Field(0.8, gt=0.0, lt=1.0)
    #: the null fits, subsample fits and internal scores use at most this many items
    max_points: int = Field(1000, ge=50)
    #: descriptors of the images that are nuisances for this science: a pipeline whose
    #: clusters follow one is flagged and ranked below those that do not; the other
    #: descriptors count as physics (``clustergrid.cards``)
    nuisances: tuple[str, ...] = NUISANCES

    @field_validator("nuisances")
    @classmethod
    def _known_descriptors(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if not is_descriptor(name)]
        if unknown:
            raise ValueError(f"unknown descriptor {', '.join(map(repr, unknown))}; the "
                             f"descriptors are {', '.join(DESCRIPTORS)} and colour_cK_cK+1")
        return tuple(dict.fromkeys(value))


#: the map drawn when an experiment file does not say
DEFAULT_MAP = {"plugin": "umap"}
#: the verdict's settings when an experiment file does not say (None: no verdict)
DEFAULT_VERDICT: dict | None = {}


class ExperimentFile(_Model):
    """The public format of an experiment file."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    description: str = ""
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    datasets: list[DatasetEntry] = Field(min_length=1)
    transforms: list[ComponentEntry] = Field(default_factory=list)
    encoders: list[ComponentEntry] = Field(min_length=1)
    reducers: list[ComponentEntry] = Field(
        default_factory=lambda: [ComponentEntry(plugin="none")], min_length=1
    )
    clusterers: list[ComponentEntry] = Field(min_length=1)
    metrics: list[ComponentEntry] | None = None
    #: the reducer drawing each encoder output's 2-D map for the report; null: no maps
    map: ComponentEntry | None = Field(default_factory=lambda: ComponentEntry(**DEFAULT_MAP))
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    #: the evidence behind the label-free verdict; null: none (and no recommendation)
    verdict: VerdictConfig | None = Field(
        default_factory=lambda: None if DEFAULT_VERDICT is None else VerdictConfig(
            **DEFAULT_VERDICT))
    cache: str | None = None

    @field_validator("metrics", mode="before")
    @classmethod
    def _metric_names(cls, value):
        # `metrics: [silhouette, ari]` is shorthand for `[{plugin: silhouette}, ...]`.
        if isinstance(value, list):
            return [{"plugin": item} if isinstance(item, str) else item for item in value]
        return value


@dataclass(frozen=True)
class Component:
    """One concrete component of the grid: a plugin and one value per parameter."""

    kind: str
    plugin: str
    params: tuple[tuple[str, Any], ...]
    #: settings the runner applies around the component, never passed to it (an
    #: encoder's ``symmetry``, see ``clustergrid.symmetry``); part of its identity
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    def label(self) -> str:
        """A stable, readable id such as ``pca[n_components=10]`` or
        ``pixels[symmetry=d4]``, in the one spelling of ``clustergrid.names``."""
        return names.component_label(self.plugin, (*self.params, *self.options))


@dataclass(frozen=True)
class DatasetChoice:
    dataset: Component
    transforms: tuple[Component, ...]


@dataclass(frozen=True)
class Experiment:
    """A validated experiment: every sweep expanded into concrete components."""

    name: str
    source: Path | None
    seeds: tuple[int, ...]
    datasets: tuple[DatasetChoice, ...]
    encoders: tuple[Component, ...]
    reducers: tuple[Component, ...]
    clusterers: tuple[Component, ...]
    metrics: tuple[Component, ...]
    executor: ExecutorConfig
    tracking_uri: str | None
    cache: str | None
    #: the reducer drawing 2-D maps, or None
    map: Component | None = None
    #: the verdict's settings, or None for no verdict
    verdict: VerdictConfig | None = None

    @property
    def grid_size(self) -> int:
        """How many combinations the grid has at most (fully deterministic pipelines
        count once per seed here, once in the plan)."""
        return (len(self.datasets) * len(self.encoders) * len(self.reducers)
                * len(self.clusterers) * len(self.seeds))


#: the largest grid ``clustergrid run`` takes without ``--max-combinations``
MAX_COMBINATIONS = 10_000


def check_grid_size(experiment: Experiment, limit: int = MAX_COMBINATIONS) -> None:
    """Refuse, in one line, a grid larger than ``limit``: a sweep written by mistake
    (``range`` pasted in, a list of lists flattened) would run for days."""
    if experiment.grid_size > limit:
        where = experiment.source or experiment.name
        raise SpecError(f"{where}: {experiment.grid_size:,} combinations, more than "
                        f"{limit:,}; check the sweeps, or confirm with "
                        f"--max-combinations {experiment.grid_size}")


def load_experiment(path: str | Path, registry: Registry,
                    overrides: Iterable[str] = ()) -> Experiment:
    """Read, validate and expand an experiment file; SpecError names what is wrong.
    ``overrides`` (``KEY=VALUE``, see ``apply_overrides``) change the file's values
    before it is validated, as ``clustergrid run FILE --set KEY=VALUE`` does."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such experiment file")
    text = path.read_text()
    return parse_experiment(text, registry, source=path, overrides=overrides)


def parse_experiment(text: str, registry: Registry, source: Path | None = None,
                     overrides: Iterable[str] = ()) -> Experiment:
    """Validate and expand an experiment file's text, after ``overrides``
    (``apply_overrides``); a SpecError lists every mistake, one line each, in file order.
    Relative paths in ``tracking.uri`` and ``cache`` are relative to the file's folder
    (to the current one when there is no ``source``)."""
    where = str(source) if source else "<experiment>"
    raw, problems = _read_yaml(text, where)
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: an experiment file is a mapping with keys name, datasets, ...")
    # Applied to the parsed mapping, so mistakes keep the file's line numbers.
    raw = apply_overrides(raw, overrides, where)
    spec = _validate(ExperimentFile, raw, problems)
    if spec is not None:
        _check_quoted_numbers(raw, spec, (), problems)
    else:
        # The entries that are well-formed still have their parameters checked, so one
        # run of the command names every mistake of the file.
        _check_entries(raw, registry, problems)
        problems.raise_any()

    def expand(path: tuple, kind: str, entries: list[ComponentEntry]) -> list[list[Component]]:
        """Each entry's concrete components (one per point of its sweeps)."""
        return [
            _expand_entry(kind, entry, (*path, i), registry, problems)
            for i, entry in enumerate(entries)
        ]

    def flat(options: list[list[Component]]) -> tuple[Component, ...]:
        return tuple(component for entry in options for component in entry)

    # A dataset's own transforms run first, then the global ones; every sweep point of
    # every transform gives one more chain.
    global_transforms = expand(("transforms",), "transform", spec.transforms)
    datasets = []
    for i, entry in enumerate(spec.datasets):
        own = expand(("datasets", i, "transforms"), "transform", entry.transforms)
        chains = list(itertools.product(*own, *global_transforms))
        for dataset in _expand_entry("dataset", entry, ("datasets", i), registry, problems):
            datasets.extend(DatasetChoice(dataset, chain) for chain in chains)
    if spec.metrics is None:
        metrics = tuple(Component("metric", info.name, ()) for info in registry.all("metric"))
    else:
        metrics = flat(expand(("metrics",), "metric", spec.metrics))
    encoders = flat(expand(("encoders",), "encoder", spec.encoders))
    reducers = flat(expand(("reducers",), "reducer", spec.reducers))
    clusterers = flat(expand(("clusterers",), "clusterer", spec.clusterers))
    map_component = _map_component(spec.map, registry, problems)
    problems.raise_any()
    folder = source.parent if source else None
    return Experiment(
        name=spec.name,
        source=source,
        seeds=tuple(dict.fromkeys(spec.seeds)),
        datasets=tuple(datasets),
        encoders=encoders,
        reducers=reducers,
        clusterers=clusterers,
        metrics=metrics,
        executor=spec.executor,
        tracking_uri=_store_relative_to(folder, spec.tracking.uri),
        cache=_path_relative_to(folder, spec.cache),
        map=map_component,
        verdict=spec.verdict,
    )


def apply_overrides(raw: dict, overrides: Iterable[str], where: str = "<experiment>") -> dict:
    """``raw`` (an experiment file's mapping) with each ``KEY=VALUE`` of ``overrides``
    applied in order, ``raw`` itself untouched. KEY is a dotted path (``seeds``,
    ``executor.workers``, ``datasets.0.n_samples``: a number indexes a list); VALUE is
    parsed as YAML (``[0]``, ``null``, ``{plugin: pca}``). Every key on the way must be
    in the file, except a top-level section (``executor``, ``verdict``, ...), which is
    created; the last key may be new, a parameter the file leaves at its default, and
    is validated with the rest of the file. A path that leads nowhere is a one-line
    SpecError naming the key and listing the keys there."""
    overrides = [overrides] if isinstance(overrides, str) else list(overrides)
    if not overrides:  # a sweep of 100,000 values is not copied for nothing
        return raw
    raw = copy.deepcopy(raw)
    for override in overrides:
        key, equals, text = override.partition("=")
        key = key.strip()
        if not equals or not key:
            raise SpecError(f"{where}: --set {override!r}: expected KEY=VALUE, "
                            "e.g. datasets.0.n_samples=200")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            raise SpecError(f"{where}: --set {key}: {text!r} is not valid YAML: "
                            f"{problem}") from None
        *parents, last = parts = key.split(".")
        # The top level's keys are the format's, whether or not the file has them.
        if parts[0] not in ExperimentFile.model_fields:
            raise SpecError(f"{where}: --set {key}: no key {parts[0]!r} at the top level "
                            f"(keys: {', '.join(ExperimentFile.model_fields)})")
        if parents and raw.get(parts[0]) is None:
            raw[parts[0]] = {}
        node, path = raw, ()
        for part in parents:
            node, path = _override_step(node, part, path, key, where), (*path, part)
        if isinstance(node, list):
            node[_override_index(node, last, path, key, where)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise SpecError(f"{where}: --set {key}: {_dotted(path)} is {node!r}, "
                            "not a mapping or a list")
    return raw


def _override_step(node, part: str, path: tuple, key: str, where: str):
    """The child ``part`` of ``node`` on the way down an override's ``key``."""
    if isinstance(node, list):
        return node[_override_index(node, part, path, key, where)]
    if isinstance(node, dict):
        if part not in node:
            keys = listing(node) or "none"
            at = f"in {_dotted(path)}" if path else "at the top level"
            raise SpecError(f"{where}: --set {key}: no key {part!r} {at} (keys: {keys})")
        return node[part]
    raise SpecError(f"{where}: --set {key}: {_dotted(path)} is {node!r}, "
                    "not a mapping or a list")


def _override_index(node: list, part: str, path: tuple, key: str, where: str) -> int:
    """``part`` as an index of the list ``node``, or a SpecError naming its range."""
    try:
        index = int(part)
    except ValueError:
        index = None
    if index is None or not -len(node) <= index < len(node):
        valid = f"an index from 0 to {len(node) - 1}" if node else "no index"
        raise SpecError(f"{where}: --set {key}: {_dotted(path)} is a list of {len(node)}: "
                        f"{valid}, not {part!r}")
    return index


#: the sections of an experiment file that hold component entries, and their kind
ENTRY_SECTIONS = {"datasets": "dataset", "transforms": "transform", "encoders": "encoder",
                  "reducers": "reducer", "clusterers": "clusterer", "metrics": "metric"}


def _check_entries(raw: dict, registry: Registry, problems: _Problems) -> None:
    """Check every well-formed component entry of a file that failed validation as a
    whole (a malformed entry already has its error)."""
    for section, kind in ENTRY_SECTIONS.items():
        entries = raw.get(section)
        if not isinstance(entries, list):
            continue
        model = DatasetEntry if section == "datasets" else ComponentEntry
        for i, item in enumerate(entries):
            if section == "metrics" and isinstance(item, str):
                item = {"plugin": item}
            entry = _valid_or_none(model, item)
            if entry is None:
                continue
            _expand_entry(kind, entry, (section, i), registry, problems)
            for j, transform in enumerate(getattr(entry, "transforms", [])):
                _expand_entry("transform", transform, (section, i, "transforms", j),
                              registry, problems)
    map_entry = _valid_or_none(ComponentEntry, raw.get("map"))
    if map_entry is not None:
        _map_component(map_entry, registry, problems)


def _valid_or_none(model: type[BaseModel], value):
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


def _path_relative_to(folder: Path | None, path: str | None) -> str | None:
    """``path``, when relative, made absolute against ``folder``: an experiment file means
    the same folders from whatever directory it is run."""
    if path is None or folder is None:
        return path
    path_ = Path(path).expanduser()
    return path if path_.is_absolute() else str((folder / path_).resolve())


def _store_relative_to(folder: Path | None, uri: str | None) -> str | None:
    """A ``tracking.uri`` that is a relative folder, database file or ``sqlite:///`` path,
    made absolute against ``folder``; any other URI as written."""
    if uri is None or folder is None:
        return uri
    if uri.startswith("sqlite:///"):
        database = uri.removeprefix("sqlite:///")
        return uri if database.startswith("/") else f"sqlite:///{(folder / database).resolve()}"
    if "://" in uri or uri.startswith("sqlite:"):
        return uri
    return _path_relative_to(folder, uri)


def _map_component(entry: ComponentEntry | None, registry: Registry,
                   problems: _Problems) -> Component | None:
    """The one reducer drawing the maps: 2-D and seeded with 0 unless the file says
    otherwise, so a map depends on the encoder output alone."""
    if entry is None:
        return None
    components = _expand_entry("reducer", entry, ("map",), registry, problems)
    if not components:  # an unknown reducer, already reported
        return None
    (component, *more) = components
    if more:
        problems.add(("map",), "one reducer draws the maps: give single values, not a sweep")
    known = registry.get("reducer", component.plugin).cls.parameters()
    given = dict(component.params)
    defaults = [(k, v) for k, v in (("n_components", 2), ("random_state", 0))
                if k in known and k not in given]
    return Component("reducer", component.plugin, (*component.params, *defaults))


def parse_datasets(text: str, registry: Registry, source: Path | None = None,
                   ) -> tuple[DatasetChoice, ...]:
    """The dataset chains of an experiment file, or of one dataset entry
    (``plugin: ...`` with its parameters and ``transforms``), validated alike."""
    where = str(source) if source else "<dataset>"
    raw, problems = _read_yaml(text, where)
    if isinstance(raw, dict) and "datasets" in raw:
        return parse_experiment(text, registry, source).datasets
    if not isinstance(raw, dict) or "plugin" not in raw:
        raise SpecError(f"{where}: expected a dataset entry (plugin: NAME, ...) or an "
                        "experiment file")
    entry = _validate(DatasetEntry, raw, problems)
    problems.raise_any()
    own = [_expand_entry("transform", t, ("transforms", j), registry, problems)
           for j, t in enumerate(entry.transforms)]
    datasets = _expand_entry("dataset", entry, (), registry, problems)
    problems.raise_any()
    return tuple(DatasetChoice(dataset, chain)
                 for dataset in datasets for chain in itertools.product(*own))


def _read_yaml(text: str, where: str) -> tuple[Any, _Problems]:
    """The parsed YAML and the ``_Problems`` that gathers its mistakes, by line."""
    # Parsed once, into nodes (for line numbers) then values, by libyaml when present:
    # a sweep of 100,000 values takes pure-Python YAML tens of seconds.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        raw = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        if mark is not None and _is_tab(text, mark):
            # "found character that cannot start any token" does not say which one.
            problem = (f"a tab at line {mark.line + 1}, column {mark.column + 1}: "
                       "YAML indents with spaces")
        raise SpecError(f"{where}{line}: not valid YAML: {problem}") from None
    finally:
        loader.dispose()
    return raw, _Problems(where, _line_numbers(node))


def _is_tab(text: str, mark) -> bool:
    """Whether a YAML error's ``mark`` points at a tab of ``text``."""
    lines = text.split("\n")
    return mark.line < len(lines) and lines[mark.line][mark.column:mark.column + 1] == "\t"


#: mistakes of one file listed before "and N more"
MAX_PROBLEMS = 30


class _Problems:
    """The mistakes of one file, gathered while it is checked and raised together, in
    file order, one line each: fixing them one run at a time, out of order, is slow."""

    def __init__(self, where: str, lines: dict[tuple, int]):
        self.where = where
        self.lines = lines
        self.found: dict[tuple, tuple[int, str]] = {}

    def add(self, path: tuple, message: str) -> None:
        """Record a mistake at a key path; the first one found at a path is kept."""
        path = tuple(path)
        if path not in self.found:
            line = _line_of(self.lines, path)
            self.found[path] = (line or 0, f"{self.where}{f':{line}' if line else ''}: "
                                           f"{_dotted(path)}: {message}")

    def raise_any(self) -> None:
        if self.found:
            ordered = sorted(self.found.values(), key=lambda found: found[0])
            raise SpecError(listing((text for _, text in ordered), MAX_PROBLEMS, "\n"))


def _validate(model: type[BaseModel], raw: dict, problems: _Problems):
    """``raw`` as a ``model``, or None with every error recorded."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors():
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            elif error["type"] == "too_short":
                message = "must list at least one entry"
            elif error["type"] == "value_error":
                # A validator's own words, without pydantic's "Value error, " before them.
                message = str(error["ctx"]["error"])
            problems.add(tuple(error["loc"]), message)
        return None


def _expand_entry(kind, entry: ComponentEntry, path: tuple, registry: Registry,
                  problems: _Problems) -> list[Component]:
    """Check an entry against its plugin's parameters and expand its sweeps; a mistake
    is recorded and its parameter left out, so the rest is still checked."""
    try:
        info = registry.get(kind, entry.plugin)
    except PluginError as exc:
        problems.add((*path, "plugin"), str(exc))
        return []
    known = info.cls.parameters()
    hints = _init_hints(info.cls)
    params = entry.params
    # The runner's settings of an encoder are split off before the plugin's signature
    # is consulted: its ``__init__`` never sees them.
    reserved = ({key: params.pop(key) for key in symmetry.KEYS if key in params}
                if kind == "encoder" else {})
    sweeps = {}
    for key, value in params.items():
        if key in symmetry.KEYS and key not in known:
            problems.add((*path, key), f"{key} applies to encoders only")
            continue
        if key not in known:
            names = ", ".join(known) or "none"
            problems.add((*path, key), f"unknown parameter of {kind} '{info.name}' "
                                       f"(known: {names})")
            continue
        values = value if isinstance(value, list) else [value]
        if not values:
            problems.add((*path, key), "an empty list sweeps over nothing: the grid is empty")
            continue
        # One adapter per parameter: building one costs more than validating a value,
        # and a sweep may hold many thousands of values.
        adapter = TypeAdapter(hints[key]) if key in hints else None
        try:
            sweeps[key] = [_coerce(adapter, item) for item in values]
        except SpecError as exc:  # the first bad value of a sweep speaks for it
            problems.add((*path, key), str(exc))
    keys = list(sweeps)
    points = _symmetry_points(reserved, path, problems)
    # dict.fromkeys: sweep points that mean the same (``symmetry_pool`` without a
    # symmetry) are one component.
    return list(dict.fromkeys(
        Component(kind, info.name, tuple(zip(keys, combo, strict=True)), chosen)
        for combo in itertools.product(*(sweeps[k] for k in keys))
        for chosen in points
    ))


def _symmetry_points(given: dict[str, Any], path: tuple, problems: _Problems,
                     ) -> list[tuple[tuple[str, Any], ...]]:
    """The canonical symmetry options (``clustergrid.symmetry.options``) of every point
    of an encoder entry's ``symmetry*`` sweeps; ``[()]`` when it has none."""
    sweeps = {}
    for key, value in given.items():
        values = value if isinstance(value, list) else [value]
        if not values:
            problems.add((*path, key), "an empty list sweeps over nothing: the grid is empty")
            continue
        try:
            sweeps[key] = [symmetry.check_value(key, item) for item in values]
        except ValueError as exc:
            problems.add((*path, key), str(exc))
    groups = sweeps.get("symmetry", ["none"])
    if "symmetry_pool" in sweeps and set(groups) == {"none"}:
        problems.add((*path, "symmetry_pool"), "pools over a symmetry: set symmetry too")
    if "symmetry_angles" in sweeps and "rotations" not in groups:
        problems.add((*path, "symmetry_angles"), "applies to symmetry: rotations only")
    keys = list(sweeps)
    return list(dict.fromkeys(
        symmetry.options(**dict(zip(keys, combo, strict=True)))
        for combo in itertools.product(*(sweeps[k] for k in keys))
    ))


def _coerce(adapter: TypeAdapter | None, value):
    """``value`` validated against the type hint of the plugin's ``__init__`` parameter
    (bounds included, e.g. ``Annotated[int, Field(ge=2)]``); SpecError says why not."""
    if adapter is None:
        return value
    try:
        # YAML's true/false are not numbers: strict mode takes a bool only where the
        # hint asks for one (lax mode would read `n_clusters: true` as 1).
        checked = adapter.validate_python(value, strict=isinstance(value, bool) or None)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"]
        if isinstance(value, bool):
            message = f"{message} (true and false are not numbers)"
        raise SpecError(f"{value!r} is not valid: {message}") from None
    if _quoted_number(value, checked):
        raise SpecError(_QUOTED_NUMBER.format(value=value))
    # Lists must stay hashable: they are part of a component's identity.
    return _freeze(checked)


#: why a number written in quotes is refused, though lax validation would read it
_QUOTED_NUMBER = "{value!r} is not valid: a number in quotes is text; write {value} without quotes"


def _quoted_number(given, validated) -> bool:
    """Whether ``given`` is a number in quotes (``"2"``) that validation read as a
    number. Only text YAML itself reads as a number once unquoted counts: such quotes
    are a slip (a parameter that takes text keeps it as text); ``1e-3``, which YAML 1.1
    leaves as text unless written ``1.0e-3``, is still read as a number."""
    if not isinstance(given, str) or isinstance(validated, bool) \
            or not isinstance(validated, int | float):
        return False
    try:
        plain = yaml.load(given, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return False
    return isinstance(plain, int | float) and not isinstance(plain, bool)


def _check_quoted_numbers(given, validated, path: tuple, problems: _Problems) -> None:
    """Record every number of a validated section written in quotes (``workers: "2"``):
    ``given`` is the file's value at ``path``, ``validated`` what the model made of it."""
    if isinstance(given, dict):
        for key, value in given.items():
            if isinstance(validated, BaseModel):
                child = (getattr(validated, key) if key in type(validated).model_fields
                         else (validated.model_extra or {}).get(key))
            else:
                child = validated.get(key) if isinstance(validated, dict) else None
            _check_quoted_numbers(value, child, (*path, key), problems)
    elif isinstance(given, list):
        if isinstance(validated, list | tuple) and len(validated) == len(given):
            for i, (value, child) in enumerate(zip(given, validated, strict=True)):
                _check_quoted_numbers(value, child, (*path, i), problems)
    elif _quoted_number(given, validated):
        problems.add(path, _QUOTED_NUMBER.format(value=given))


class FrozenDict(dict):
    """A mapping parameter value (``tile: {size: 64}``): still a dict for the component,
    but hashable, since components are identities in the plan."""

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.items())))

    def _readonly(self, *args, **kwargs):
        raise TypeError("parameter values from an experiment file are read-only")

    __setitem__ = __delitem__ = update = pop = popitem = setdefault = clear = _readonly


def _freeze(value):
    if isinstance(value, list | tuple):
        return tuple(_freeze(item) for item in value)
    if isinstance(value, dict):
        return FrozenDict({key: _freeze(item) for key, item in value.items()})
    return value


def _init_hints(cls) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls.__init__, include_extras=True)
    except Exception:  # a hint the plugin's module cannot resolve is simply not checked
        return {}


def parameter_rows(cls) -> list[tuple[str, str, str]]:
    """A component's parameters as an experiment file sees them: ``(name, default, type)``
    text, ``(required)`` for a parameter without a default, the type its hint checks
    (empty without one). What ``clustergrid plugins NAME`` and the manual's reference
    pages (``clustergrid.reference``) show."""
    hints = _init_hints(cls)
    rows = []
    for name, parameter in cls.parameters().items():
        hint = hints.get(name, parameter.annotation)
        default = ("(required)" if parameter.default is parameter.empty
                   else repr(parameter.default))
        shown = ("" if hint is parameter.empty
                 else hint if isinstance(hint, str) else inspect.formatannotation(hint))
        rows.append((name, default, shown))
    return rows


def _line_numbers(node) -> dict[tuple, int]:
    """Key path -> 1-based line, for every mapping key and sequence item in the YAML."""
    lines: dict[tuple, int] = {}

    def walk(node, path):
        if node is None:
            return
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, key.value)
                walk(value, child)
                lines[child] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*path, index))

    walk(node, ())
    return lines


def _line_of(lines: dict[tuple, int], path: tuple) -> int | None:
    """The line of ``path``, or of its nearest ancestor in the file."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def _dotted(path: tuple) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return re.sub(r"^\.", "", text) or "(top level)"
