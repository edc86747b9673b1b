"""Expands an experiment into a DAG of steps, each identified by a content hash.

A step's key hashes its stage, its components (plugin, version, parameters), the seed
when one of them is stochastic, and its parents' keys. Two combinations that share a
prefix of their pipeline therefore share those steps, and the runner computes them once:
in a grid of 2 encoders x 3 reducers x 4 clusterers, each encoder runs once per seed
that it depends on, not 12 times.

Each stage is declared once in ``clustergrid.stages``, which lists them with the outputs
they write to the cache. A map, the descriptors and the cards are computed for the report
only: they are not part of a combination's hash, and one that fails does not fail the
combinations it describes. The verdict's evidence is part of the hash (it is part of the
result), but a combination whose evidence could not be gathered is still finished: it is
logged without it, with the error as a tag. A stage that declares a version has it in
every step's key.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from clustergrid import names, stages
from clustergrid.cards import MAX_DESCRIBED, NUISANCES
from clustergrid.errors import SpecError
from clustergrid.registry import Registry
from clustergrid.spec import Component, DatasetChoice, Experiment, VerdictConfig
from clustergrid.stages import Stage
from clustergrid.stages.evidence import (
    CALIBRATION,
    NULL,
    NULL_REDUCE,
    REFERENCE,
    RESAMPLING,
    SUBSAMPLE,
    SUBSAMPLE_REDUCE,
)
from clustergrid.stages.pipeline import CLUSTER, DATA, ENCODE, PROBE, REDUCE, SCORE, STABILITY
from clustergrid.stages.report import CARDS, DESCRIBE, MAP
from clustergrid.symmetry import VERSION as symmetry_version


@dataclass(frozen=True)
class Step:
    """One unit of work: a pure function of its components, seed and parents' outputs."""

    stage: str
    key: str
    components: tuple[Component, ...]
    parents: tuple[str, ...] = ()
    #: passed as ``random_state`` to the stochastic components of this step
    seed: int | None = None
    #: settings of the stage itself (such as the verdict's), part of the key
    options: tuple[tuple[str, Any], ...] = ()

    def describe(self) -> str:
        names = " > ".join(component.label() for component in self.components)
        return f"{self.stage} {names}" + (f" (seed {self.seed})" if self.seed is not None else "")


@dataclass(frozen=True)
class Combination:
    """One cell of the grid: a dataset chain, an encoder, a reducer, a clusterer, a seed."""

    dataset: DatasetChoice
    encoder: Component
    reducer: Component
    clusterer: Component
    #: the seed, or None when no component of the pipeline is stochastic
    seed: int | None
    #: stage -> step key
    steps: dict[str, str] = field(compare=False, hash=False)

    @cached_property  # asked once per combination by resume, preview and logging
    def key(self) -> str:
        """The combination's config hash: a hash of all its steps' keys (complete once
        the plan is made; the stability step is the last added)."""
        return config_hash(sorted((stage, key) for stage, key in self.steps.items()
                                  if stages.get(stage).in_hash))

    def label(self) -> str:
        """The combination's name, its MLflow run name: ``dataset > transforms / encoder /
        reducer / clusterer / seed=N`` in the one spelling of ``clustergrid.names``."""
        chain = [self.dataset.dataset, *self.dataset.transforms]
        return names.pipeline_label(names.chain_label(c.label() for c in chain),
                                    self.encoder.label(), self.reducer.label(),
                                    self.clusterer.label(), self.seed)


@dataclass
class Plan:
    """Every unique step (in dependency order) and every combination of the grid."""

    experiment: Experiment
    steps: dict[str, Step]
    combinations: list[Combination]
    versions: dict[tuple[str, str], str]
    fingerprints: dict[Component, str]

    def steps_for(self, combinations: list[Combination]) -> list[Step]:
        """The unique steps these combinations need, their ancestors included, parents
        before children."""
        wanted: set[str] = set()
        todo = [key for combination in combinations for key in combination.steps.values()]
        while todo:
            key = todo.pop()
            if key not in wanted:
                wanted.add(key)
                todo.extend(self.steps[key].parents)
        return [step for key, step in self.steps.items() if key in wanted]


def make_plan(experiment: Experiment, registry: Registry) -> Plan:
    """Expand the grid; datasets are asked for their fingerprint (cheap by contract)."""
    steps: dict[str, Step] = {}
    versions: dict[tuple[str, str], str] = {}
    fingerprints: dict[Component, str] = {}

    def version(component: Component) -> str:
        ident = (component.kind, component.plugin)
        if ident not in versions:
            versions[ident] = registry.get(component.kind, component.plugin).version
        return versions[ident]

    #: plugin -> whether it takes a seed: asking reads its signature, and a grid asks
    #: once per combination
    seeded: dict[tuple[str, str], bool] = {}

    def stochastic(component: Component) -> bool:
        ident = (component.kind, component.plugin)
        if ident not in seeded:
            seeded[ident] = registry.get(*ident).cls.is_stochastic()
        return seeded[ident] and "random_state" not in component.kwargs

    #: a step's arguments -> its key: shared steps come up once per combination, and
    #: hashing is most of the time of planning a large grid
    known: dict[tuple, str] = {}

    def add(stage: Stage, components: tuple[Component, ...], parents: tuple[str, ...],
            seed: int | None, extra: dict[str, Any] | None = None,
            options: dict[str, Any] | None = None) -> str:
        if stage.version is not None:
            options = {**(options or {}), "version": stage.version}
        arguments = (stage.name, components, parents, seed,
                     tuple(sorted((extra or {}).items())),
                     tuple(sorted((options or {}).items())))
        if arguments in known:
            return known[arguments]
        identity = {
            "stage": stage.name,
            "components": [
                [c.kind, c.plugin, version(c), [list(p) for p in c.params]] for c in components
            ],
            "parents": list(parents),
            "seed": seed,
            **(extra or {}),
            **({"options": options} if options else {}),
        }
        key = known[arguments] = config_hash(identity)
        steps.setdefault(key, Step(stage.name, key, components, parents, seed,
                                   tuple(sorted((options or {}).items()))))
        return key

    def scope(metric: Component) -> str:
        return registry.get("metric", metric.plugin).cls.scope

    def evidence(verdict: VerdictConfig, encode: str, reduce: str, cluster: str,
                 reducer: Component, clusterer: Component) -> dict[str, str]:
        """The verdict's steps of one combination. The reference depends on the encoder
        output alone; the reducer's fits on the null draws and the subsamples on the
        encoder output and the reducer, shared by every clusterer after it; the
        clusterer's fits on those on the pipeline, not its seed."""
        limit = {"max_points": verdict.max_points}
        draws = {**limit, "draws": verdict.null_draws}
        resamples = {**limit, "resamples": verdict.resamples, "fraction": verdict.fraction}
        reference = add(REFERENCE, (), (encode,), None, options=limit)
        null_reduce = add(NULL_REDUCE, (reducer,), (reference,), None, options=draws)
        null = add(NULL, (clusterer,), (reference, null_reduce), None, options=draws)
        subsample_reduce = add(SUBSAMPLE_REDUCE, (reducer,), (encode,), None,
                               options=resamples)
        subsample = add(SUBSAMPLE, (clusterer,), (encode, subsample_reduce), None,
                        options=resamples)
        return {
            RESAMPLING.name: add(RESAMPLING, (), (cluster, subsample), None),
            CALIBRATION.name: add(CALIBRATION, (clusterer,), (cluster, reduce, null), None,
                                  options=limit),
        }

    clustering_metrics = tuple(m for m in experiment.metrics if scope(m) == "clustering")
    embedding_metrics = tuple(m for m in experiment.metrics if scope(m) == "embedding")
    combinations: dict[str, Combination] = {}
    nuisances = tuple(experiment.verdict.nuisances if experiment.verdict else NUISANCES)
    for choice in experiment.datasets:
        if choice.dataset not in fingerprints:
            fingerprints[choice.dataset] = _fingerprint(choice.dataset, registry)
        data = add(DATA, (choice.dataset, *choice.transforms), (), None,
                   {"fingerprint": fingerprints[choice.dataset]})
        # What the images show, for the cards of every combination of this data.
        describe = add(DESCRIBE, (), (data,), None, options={"max_items": MAX_DESCRIBED})
        for encoder, reducer, clusterer in itertools.product(
            experiment.encoders, experiment.reducers, experiment.clusterers
        ):
            # Seeds innermost: a pipeline's seeds and its stability step are neighbours in
            # the schedule, so its runs are logged while the next pipeline computes.
            group = []
            for seed in experiment.seeds:
                encode_seed = seed if stochastic(encoder) else None
                # The encoder's symmetry (``clustergrid.symmetry``) is a setting of the
                # step, not a parameter of the encoder; without one the key is as before.
                encode = add(ENCODE, (encoder,), (data,), encode_seed, options={
                    **dict(encoder.options), "symmetry_version": symmetry_version,
                } if encoder.options else None)
                # Representation quality depends on the encoder output alone: once for
                # every reducer and clusterer that follows it.
                probe = add(PROBE, embedding_metrics, (encode, data), None) \
                    if embedding_metrics else None
                reduce_seed = seed if stochastic(reducer) else None
                reduce = add(REDUCE, (reducer,), (encode,), reduce_seed)
                cluster_seed = seed if stochastic(clusterer) else None
                cluster = add(CLUSTER, (clusterer,), (reduce,), cluster_seed)
                score = add(SCORE, clustering_metrics, (cluster, reduce, data), None)
                if score in combinations:
                    # A fully deterministic pipeline is the same combination for every
                    # seed: it is computed and logged once.
                    continue
                uses_seed = {encode_seed, reduce_seed, cluster_seed} != {None}
                stage_keys = {DATA.name: data, ENCODE.name: encode, REDUCE.name: reduce,
                              CLUSTER.name: cluster, SCORE.name: score}
                if probe:
                    stage_keys[PROBE.name] = probe
                if experiment.map is not None:
                    stage_keys[MAP.name] = add(MAP, (experiment.map,), (encode,), None)
                stage_keys[DESCRIBE.name] = describe
                stage_keys[CARDS.name] = add(CARDS, (), (cluster, reduce, describe, data),
                                             None, options={"nuisances": nuisances})
                if experiment.verdict is not None:
                    stage_keys.update(evidence(experiment.verdict, encode, reduce, cluster,
                                               reducer, clusterer))
                combinations[score] = Combination(
                    dataset=choice, encoder=encoder, reducer=reducer, clusterer=clusterer,
                    seed=seed if uses_seed else None, steps=stage_keys,
                )
                group.append(combinations[score])
            # Stability: how much the clustering changes with the seed alone.
            if len(group) >= 2:
                stability = add(STABILITY, (clusterer,),
                                tuple(c.steps[CLUSTER.name] for c in group), None)
                for combination in group:
                    combination.steps[STABILITY.name] = stability
    return Plan(experiment, steps, list(combinations.values()), versions, fingerprints)


def config_hash(identity: Any) -> str:
    """A stable hash of a JSON-able description."""
    text = json.dumps(identity, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _fingerprint(dataset: Component, registry: Registry) -> str:
    cls = registry.get("dataset", dataset.plugin).cls
    try:
        return str(cls(**dataset.kwargs).fingerprint())
    except Exception as exc:
        raise SpecError(
            f"dataset '{dataset.label()}': cannot read its fingerprint: {type(exc).__name__}: {exc}"
        ) from None
