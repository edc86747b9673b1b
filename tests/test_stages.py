"""The stages, each declared once (``clustergrid.stages``): the declarations say what the
planner, the runner, the memory check, the results and the report do with each stage, and
no other module keeps a list of stage names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from clustergrid import stages
from clustergrid.plan import config_hash, make_plan
from clustergrid.registry import Registry
from clustergrid.spec import parse_experiment

CORE = Path(__file__).parents[1] / "core"
NAMES = {stage.name for stage in stages.STAGES}

SMALLEST = """\
name: smallest
seeds: [0]
datasets:
  - plugin: blobs
    n_samples: 60
encoders:
  - plugin: pixels
reducers:
  - plugin: none
clusterers:
  - plugin: kmeans
    n_clusters: 3
metrics: [silhouette]
map: null
verdict: null
"""
#: every stage: several seeds, an embedding metric, a map and the verdict's evidence
EVERY = (SMALLEST.replace("seeds: [0]", "seeds: [0, 1]")
         .replace("metrics: [silhouette]", "metrics: [silhouette, knn_accuracy]")
         .replace("map: null", "map: {plugin: pca}")
         .replace("verdict: null", "verdict: {null_draws: 3, resamples: 3}")
         .replace("  - plugin: none", "  - plugin: none\n  - plugin: pca\n    n_components: 2"))


def stage_name_collections(source: str) -> list[tuple[int, list[str]]]:
    """``(line, names)`` of each list, tuple, set or dict literal in ``source`` whose
    elements (a dict's keys) are two or more strings, all of them stage names."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            elements = node.elts
        elif isinstance(node, ast.Dict):
            elements = node.keys  # None for ``**mapping``: not a string
        else:
            continue
        names = [e.value for e in elements
                 if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        if len(names) >= 2 and len(names) == len(elements) and set(names) <= NAMES:
            found.append((node.lineno, names))
    return found


def test_the_check_finds_a_list_of_stage_names():
    source = """
ORDER = ("data", "encode")
REPORT = {"map", "describe", "cards"}
INPUTS = {"encode": (0, "images"), "score": (1, "X")}
mixed = ["data", "labels"]
one = step.stage == "cluster"
some = ["cluster"]
"""
    assert stage_name_collections(source) == [
        (2, ["data", "encode"]), (3, ["map", "describe", "cards"]), (4, ["encode", "score"])]


def test_no_module_but_the_declarations_lists_stage_names():
    """A stage's name and role are said once, in its declaration; modules read them
    there (``stages.get(name).scoring``, ``stages.named(role="report")``)."""
    declarations = CORE / "stages"
    found = {}
    for path in sorted(CORE.rglob("*.py")):
        if declarations in path.parents:
            continue
        listed = stage_name_collections(path.read_text())
        if listed:
            found[path.relative_to(CORE).as_posix()] = listed
    assert found == {}


def test_each_stage_is_declared_once_in_the_plans_order():
    assert len(NAMES) == len(stages.STAGES)
    assert [stage.name for stage in stages.STAGES] == [
        "data", "encode", "probe", "reduce", "cluster", "score", "stability",
        "map", "describe", "cards",
        "reference", "null_reduce", "null", "subsample_reduce", "subsample", "resampling",
        "calibration"]
    assert all(stages.get(stage.name) is stage for stage in stages.STAGES)
    with pytest.raises(KeyError, match="no stage is named 'clustering'; the stages are data, "):
        stages.get("clustering")


def test_what_the_declarations_say_of_each_stage():
    """What the planner and the runner did with their own lists before, said once."""
    assert stages.named(role="report") == ("map", "describe", "cards")
    assert stages.named(in_hash=False) == ("map", "describe", "cards")
    assert stages.named(decides_success=True) == (
        "data", "encode", "probe", "reduce", "cluster", "score", "stability")
    assert stages.named(scoring=True) == (
        "probe", "score", "stability", "cards", "resampling", "calibration")
    # Their files are logged with the combination; the others' once, to the invocation.
    assert stages.named(scope="combination") == (
        "cluster", "score", "cards", "resampling", "calibration")
    inputs = {stage.name: stage.input for stage in stages.STAGES if stage.input}
    assert inputs == {
        "encode": (0, "images"), "probe": (0, "X"), "reduce": (0, "X"), "cluster": (0, "X"),
        "score": (1, "X"), "map": (0, "X"), "null_reduce": (0, "mean"), "null": (0, "mean"),
        "subsample_reduce": (0, "X"), "subsample": (0, "X")}
    assert stages.named(refit="reducer") == ("null_reduce", "subsample_reduce")
    assert stages.named(refit="clusterer") == ("null", "subsample")


def test_the_scores_the_stages_log_have_a_direction():
    assert stages.logged_directions(role="evidence") == {
        "resampling_ari": "higher", "resampling_jaccard": "higher", "validity": "higher",
        "validity_excess": "higher", "honest_silhouette": "higher",
        "adjusted_silhouette": "higher", "excess": "higher", "coverage": "descriptive",
        "gap": "higher"}
    assert stages.logged_directions()["stability_ari"] == "higher"
    assert stages.logged_directions()["nuisance.*"] == "descriptive"
    # Only a scoring stage logs scores under their own names.
    assert all(stage.scoring for stage in stages.STAGES if stage.metrics)


def test_a_declaration_with_an_unknown_role_is_refused():
    with pytest.raises(ValueError, match="stage 'odd' declares role 'extra'"):
        stages.Stage("odd", lambda *args: {}, role="extra")
    with pytest.raises(ValueError, match="stage 'odd' for 'odd_score' declares direction 'up'"):
        stages.Stage("odd", lambda *args: {}, metrics={"odd_score": "up"})


def test_a_plan_has_every_stage_it_asks_for_and_the_others_only_when_asked():
    registry = Registry.load()
    smallest = make_plan(parse_experiment(SMALLEST, registry), registry)
    assert {step.stage for step in smallest.steps.values()} == set(stages.named(optional=False))
    every = make_plan(parse_experiment(EVERY, registry), registry)
    assert {step.stage for step in every.steps.values()} == NAMES
    for step in every.steps.values():  # a declared version is part of every step's key
        assert dict(step.options).get("version") == stages.get(step.stage).version


def test_step_keys_are_as_before_so_cached_steps_stay_valid():
    """The keys of every step of a plan with every stage, as clustergrid 0.1.0 made them
    before the stages were declared in one place. A change here makes every user's cached
    steps stale and logs their combinations again: only a new version of a stage (its
    ``version``) or of a component should do that."""
    registry = Registry.load()
    plan = make_plan(parse_experiment(EVERY, registry), registry)
    assert registry.get("encoder", "pixels").version == "0.1.0"
    keys = sorted((step.stage, step.key) for step in plan.steps.values())
    assert len(keys) == 38
    assert config_hash(keys) == "ef749efbfa7e397c5f77158b"
    assert config_hash(sorted(c.key for c in plan.combinations)) == "b1aa6e1c23ceb19b35ac64a2"
