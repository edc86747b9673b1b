"""One spelling of every pipeline's name (``clustergrid.names``): produced, read back from
any spelling a user pastes, wrapped for a terminal, and used to find a combination."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from clustergrid.errors import ClustergridError
from clustergrid.export import find_combination
from clustergrid.names import (
    canonical,
    component_label,
    split_pipeline,
    value_text,
    wrap,
)
from clustergrid.plan import make_plan
from clustergrid.results import (
    component_labels,
    pipeline_names,
    pipeline_order,
    results_frame,
    varying_parts,
)
from clustergrid.spec import parse_experiment

GMM = "gmm[criterion=bic,k_range=[2, 6],n_clusters=auto]"
CHAIN = "images[labels_from=folders,on_error=skip,path=/data/surveys/first/frdeep/images]" \
        " > resize[size=32] > normalize"
PIPELINE = f"{CHAIN} / pixels / pca[n_components=10] / {GMM}"


@pytest.mark.parametrize("spelling", [
    GMM,
    "gmm[n_clusters=auto,k_range=(2, 6),criterion=bic]",
    "gmm[ criterion = bic , k_range = [2,6] , n_clusters = auto ]",
    "gmm[k_range=(2,6),n_clusters='auto',criterion=\"bic\"]",
    "gmm[k_range=[2, 6],criterion=bic,n_clusters=auto,]",
])
def test_every_spelling_of_a_component_reads_as_one(spelling):
    assert canonical(spelling) == GMM


@pytest.mark.parametrize("spelling", [
    PIPELINE,
    "images[path=/data/surveys/first/frdeep/images,labels_from=folders,on_error=skip]"
    "+resize[size=32]+normalize / pixels / pca[n_components=10] / "
    "gmm[n_clusters=auto,k_range=(2, 6),criterion=bic]",
    "  images[on_error='skip', path='/data/surveys/first/frdeep/images', labels_from=folders]"
    " >resize[size=32]>   normalize/pixels/pca[n_components=10]/"
    "gmm[criterion=bic, n_clusters=auto, k_range=[2,6]]  ",
])
def test_every_spelling_of_a_pipeline_reads_as_one(spelling):
    assert canonical(spelling) == PIPELINE
    assert canonical(spelling + " / seed=3") == PIPELINE + " / seed=3"
    assert canonical(spelling + " / seed = 3") == PIPELINE + " / seed=3"


def test_values_have_one_spelling_and_strings_are_quoted_only_when_they_must_be():
    assert value_text(("g", "r", "i")) == value_text(["g", "r", "i"]) == "[g, r, i]"
    assert canonical("fits[bands=('g', 'r', 'i')]") == canonical('fits[bands=["g", "r", "i"]]') \
        == "fits[bands=[g, r, i]]"
    assert value_text({"size": 64, "overlap": 0.5}) == "{overlap: 0.5, size: 64}"
    assert canonical("fits[tile={'size': 64, 'overlap': 0.5}]") == \
        "fits[tile={overlap: 0.5, size: 64}]"
    assert [value_text(v) for v in (1e-5, 0.5, 3, True, None)] == \
        ["1e-05", "0.5", "3", "True", "None"]
    assert canonical("x[a=1e-5,b=null,c=true,d=false]") == "x[a=1e-05,b=None,c=True,d=False]"
    # Plain strings as they are, paths included; a string that would read as another
    # value, or that holds a separator, in double quotes.
    assert [value_text(v) for v in ("minmax", "none", "/data/a b/x.fits", "10", "True",
                                    "1,2", "", " x", "o'brien")] == \
        ["minmax", "none", "/data/a b/x.fits", '"10"', '"True"', '"1,2"', '""', '" x"',
         '"o\'brien"']


@pytest.mark.parametrize("params", [
    [("n_clusters", "auto"), ("k_range", (2, 6)), ("criterion", "bic")],
    [("path", "/data/x,y/[a]"), ("tile", {"size": 64}), ("select", ("1", 2, None))],
    [("threshold", 0.1), ("flag", False), ("name", "it's \"quoted\"\\ here")],
    [("size", 32)],
    [],
])
def test_a_label_reads_back_as_itself_whatever_order_its_parameters_come_in(params):
    label = component_label("plugin", params)
    assert canonical(label) == label
    assert component_label("plugin", list(reversed(params))) == label
    assert canonical(f"{label} > {label} / e / r / c / seed=0") == \
        f"{label} > {label} / e / r / c / seed=0"


def test_the_runners_settings_come_after_a_components_own_parameters():
    label = component_label("counting", [("symmetry", "c4"), ("tag", "b")])
    assert label == "counting[tag=b,symmetry=c4]"
    assert canonical("counting[symmetry=c4,tag=b]") == label


def test_canonical_is_idempotent_and_keeps_what_it_cannot_read():
    for text in (PIPELINE, "pca[n_components=10] / kmeans", "kmeans[n_clu", "seed=1",
                 "a  b", "(2, 6)", "x[a=((]"):
        once = canonical(text)
        assert canonical(once) == once
    assert canonical("kmeans[n_clu") == "kmeans[n_clu"
    assert canonical("pca[ n_components=10 ]/ kmeans") == "pca[n_components=10] / kmeans"


def test_a_pipelines_name_splits_into_its_parts():
    parts = split_pipeline("d[a=1]+t / e / r / c[k=(2, 3)] / seed=3")
    assert parts.chain == ("d[a=1]", "t") and parts.encoder == "e" and parts.reducer == "r"
    assert parts.clusterer == "c[k=[2, 3]]" and parts.seed == 3
    assert parts.name == "d[a=1] > t / e / r / c[k=[2, 3]]"
    assert split_pipeline("pca4") is None
    assert split_pipeline("a / b / c") is None
    assert split_pipeline("a / b / c / d / e") is None


@pytest.mark.parametrize("width", [20, 40, 60, 80, 100, 200])
def test_a_long_name_wraps_between_its_components(width):
    lines = wrap(PIPELINE, width)
    assert all(len(line) <= width for line in lines)
    if width >= 45:  # narrower, a parameter alone is wider than a line: it must break
        assert canonical(" ".join(lines)) == PIPELINE
    # A component that fits a line is on one line; a longer one breaks between its
    # parameters, never inside one (each fits at these widths).
    components = ["resize[size=32]", "normalize", "pixels", "pca[n_components=10]", GMM,
                  "images[labels_from=folders,on_error=skip,path=/data/surveys/first/"
                  "frdeep/images]"]
    for component in components:
        if len(component) <= width:
            assert any(component in line for line in lines), (component, lines)
    if width >= 55:
        for param in ("labels_from=folders", "path=/data/surveys/first/frdeep/images"):
            assert any(param in line for line in lines)
    assert len(wrap(PIPELINE, 500)) == 1


def test_a_plans_run_names_are_canonical(registry):
    experiment = parse_experiment("""
name: n
datasets:
  - plugin: digits
    n_samples: 50
    transforms:
      - plugin: normalize
        per_channel: true
        method: minmax
encoders: [{plugin: pixels}]
clusterers:
  - plugin: gmm
    n_clusters: auto
    k_range: [[2, 6]]
    criterion: bic
map: null
verdict: null
""", registry)
    (combination,) = make_plan(experiment, registry).combinations
    label = combination.label()
    assert label == ("digits[n_samples=50] > normalize[method=minmax,per_channel=True] / "
                     f"pixels / none / {GMM} / seed=0")
    assert canonical(label) == label


def _run(name: str, status: str = "FINISHED", start: int = 0, **params) -> SimpleNamespace:
    """A combination run as MLflow returns it, enough for ``results_frame``."""
    return SimpleNamespace(
        info=SimpleNamespace(status=status, run_id=f"r{start}", start_time=start,
                             run_name=name),
        data=SimpleNamespace(tags={"clustergrid.hash": f"h{start}"}, params=params,
                             metrics={"ari": 0.1 * start}))


OLD = ("digits[n_samples=200]+normalize[per_channel=True,method=minmax] / pixels / none / "
       "gmm[n_clusters=auto,k_range=(2, 6),criterion=bic] / seed=0")
NEW = ("digits[n_samples=200] > normalize[method=minmax,per_channel=True] / pixels / none / "
       f"{GMM} / seed=0")


def test_names_of_an_older_store_are_read_back_canonical():
    frame = results_frame([_run(OLD, start=1, seed="0"), _run(NEW, start=2, seed="0")])
    # One pipeline, spelled two ways in the store: its latest run counts.
    assert list(frame["pipeline"]) == [NEW]
    assert list(pipeline_names(frame)) == [NEW.removesuffix(" / seed=0")]
    labels = component_labels(frame).iloc[0]
    assert dict(labels) == {"dataset": "digits[n_samples=200]",
                            "transforms": "normalize[method=minmax,per_channel=True]",
                            "encoder": "pixels", "reducer": "none", "clusterer": GMM,
                            "seed": "0"}


def test_labels_of_a_run_not_named_as_a_pipeline_come_from_its_params():
    frame = pd.DataFrame([{"pipeline": "something else", "param.dataset": "digits",
                           "param.dataset.n_samples": "200", "param.transforms": "none",
                           "param.encoder": "pixels", "param.reducer": "none",
                           "param.clusterer": "gmm", "param.clusterer.k_range": "[2, 6]",
                           "param.clusterer.n_clusters": "auto",
                           "param.clusterer.criterion": "bic", "param.seed": "0"}])
    labels = component_labels(frame).iloc[0]
    assert labels["dataset"] == "digits[n_samples=200]" and labels["clusterer"] == GMM
    assert labels["transforms"] == "none"
    # Without run names at all, the pipeline is named from its params.
    assert list(pipeline_names(frame.drop(columns="pipeline"))) == [
        f"digits[n_samples=200] / pixels / none / {GMM}"]


def _frame(n: int, seeds=("0",)) -> pd.DataFrame:
    rows = [{"pipeline": f"{CHAIN} / pixels / pca[n_components={k}] / {GMM} / seed={seed}",
             "param.seed": seed, "status": "FINISHED", "run_id": f"{k}-{seed}"}
            for k in range(2, 2 + n) for seed in seeds]
    return pd.DataFrame(rows)


def test_a_combination_is_found_by_any_spelling_of_its_name_or_its_number():
    frame = _frame(3)
    order = pipeline_order(frame)
    assert order.names == list(dict.fromkeys(pipeline_names(frame)))  # no verdict evidence
    name = frame["pipeline"][1]
    old = ("images[path=/data/surveys/first/frdeep/images, on_error=skip, labels_from=folders]"
           "+resize[size=32]+normalize / pixels / pca[n_components=3] / "
           "gmm[n_clusters=auto,k_range=(2, 6),criterion=bic]")
    for given in (name, name.removesuffix(" / seed=0"), old, "2", "#2", " 2 ",
                  "pca[n_components=3]", "pca[ n_components = 3 ] / gmm"):
        assert find_combination(frame, "x", given, None)["run_id"] == "3-0", given
    assert find_combination(frame, "x", "3", 0)["run_id"] == "4-0"


def test_a_name_matching_nothing_or_several_gives_a_short_message():
    frame = _frame(40, seeds=("0", "1"))
    with pytest.raises(ClustergridError) as unknown:
        find_combination(frame, "x", "spectral[n_clusters=4]", None)
    message = str(unknown.value)
    assert "\n" not in message and len(message) < 600
    assert message.startswith("no finished combination of 'x' matches --pipeline "
                              "'spectral[n_clusters=4]'; its pipelines: #1 pca[n_components=2]; ")
    assert message.count("#") == 5 and "and 35 more" in message
    # A fragment (here with its bracket unclosed) is looked for as it is.
    with pytest.raises(ClustergridError, match=r"matches 20 combinations .*"
                       r"\(#9 pca\[n_components=10\]; #10 pca\[n_components=11\]; .*; "
                       r"and 5 more\); give its number or more of its name and add --seed "
                       r"\(one of 0, 1\)$"):
        find_combination(frame, "x", "pca[n_components=1", None)
    with pytest.raises(ClustergridError, match=r"matches 2 combinations .* add --seed"):
        find_combination(frame, "x", "7", None)
    with pytest.raises(ClustergridError, match=r"^--pipeline 41: 'x' has pipelines 1 to 40"):
        find_combination(frame, "x", "41", None)
    long = "images[path=/" + "x" * 2000 + "]"
    with pytest.raises(ClustergridError) as pasted:
        find_combination(frame, "x", long, None)
    assert len(str(pasted.value)) < 600


def test_the_short_names_are_the_roles_that_vary():
    frame = _frame(2)
    roles, short = varying_parts(list(dict.fromkeys(pipeline_names(frame))))
    assert roles == ["reducer"]
    assert sorted(short.values()) == ["pca[n_components=2]", "pca[n_components=3]"]
    assert varying_parts(["pca4", "none5"])[1] == {"pca4": "pca4", "none5": "none5"}
