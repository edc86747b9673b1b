"""What each cluster is: interpretable descriptors of the images, a card per cluster that
says which of them set it apart, and a check of whether a clustering mostly follows a
nuisance (brightness, apparent size, orientation) rather than what the images show.

Pure functions of arrays; ``stages`` runs them as the plan's ``describe`` step (once per
data step, whatever the encoder) and ``cards`` step (once per clustering).

The test: for each cluster and descriptor, its members against the rest by the
Mann-Whitney U test (two-sided, ``scipy.stats.mannwhitneyu``), Holm-corrected over the
descriptors of the cluster; the effect size is Cliff's delta, ``2 U / (n1 n2) - 1``, the
rank-biserial correlation (+1: every member above every other item, -1: below). A
descriptor sets a cluster apart when ``|delta| >= EFFECT_THRESHOLD`` and its corrected
p-value is below ``ALPHA``.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from clustergrid import morphology

#: part of the describe and cards steps' keys: a new definition computes them again
VERSION = "3"
#: items described at most (a fixed random sample beyond): a card's medians and tests need
#: thousands of items, not every one of a large survey, and describing costs ~ms an image
MAX_DESCRIBED = 5000
#: |Cliff's delta| from which a descriptor sets a cluster apart (Romano et al. 2006:
#: 0.147 small, 0.33 medium, 0.474 large)
EFFECT_THRESHOLD = 0.33
#: corrected p-value below which a difference counts
ALPHA = 0.01
#: most and least typical members listed per cluster
TYPICAL = 5
#: descriptors a clustering should not merely follow, unless the experiment says which
#: are physics for its science (``verdict: {nuisances: [...]}``; a size can be either)
NUISANCES = ("brightness", "size", "orientation", "offset", "background")
#: images narrower than this (rows of a table stored as 1 x d images) have no nuisances
MIN_IMAGE_SIDE = 3
#: adjusted mutual information with a nuisance from which a clustering can be said to
#: follow it: a tenth of what a perfect match explains, beyond chance
NUISANCE_EFFECT = 0.1
#: shuffles of the clusters in the permutation test of a nuisance: enough for a p below
#: ALPHA corrected over five nuisances (the smallest p is 1/1000)
PERMUTATIONS = 999
#: items at most in the permutation test (a fixed random sample beyond)
PERMUTATION_ITEMS = 2000
#: quantile bins of a nuisance at most (as many as there are clusters, at least 2)
MAX_BINS = 10

#: the descriptors of every image, in output order; colours follow when there are bands
DESCRIPTORS = ("brightness", "size", "concentration", "asymmetry", "ellipticity", "gini",
               "m20", "orientation", "offset", "background")

#: descriptor -> (what a cluster is when it is higher, when it is lower)
WORDS = {
    "brightness": ("brighter", "fainter"),
    "size": ("larger", "smaller"),
    "concentration": ("more concentrated", "less concentrated"),
    "asymmetry": ("more asymmetric", "more symmetric"),
    "ellipticity": ("more elongated", "rounder"),
    "gini": ("light more unequal (higher Gini)", "light more even (lower Gini)"),
    "m20": ("brightest light more spread (higher M20)", "brightest light more central "
            "(lower M20)"),
    "orientation": ("at larger position angles", "at smaller position angles"),
    "offset": ("farther from the image centre", "nearer the image centre"),
    "background": ("on a higher background", "on a lower background"),
}


def is_descriptor(name: str) -> bool:
    """Whether ``name`` is one of ``describe_image``'s values for some number of bands."""
    if name in DESCRIPTORS:
        return True
    bands = re.fullmatch(r"colour_c(\d+)_c(\d+)", name)
    return bands is not None and int(bands[2]) == int(bands[1]) + 1


def descriptor_names(n_channels: int) -> list[str]:
    """The names of ``describe_image``'s values for images of ``n_channels`` bands."""
    colours = [f"colour_c{k}_c{k + 1}" for k in range(n_channels - 1)] if n_channels > 1 else []
    return [*DESCRIPTORS, *colours]


def describe_image(image: np.ndarray) -> np.ndarray:
    """Raw descriptors of one ``(channels, height, width)`` image, on the sum of its bands
    cleaned to its positive pixels (``morphology.clean``):

    - ``brightness``: total positive flux;
    - ``size``: ``sqrt(length * width)``, the geometric mean of the rms extents along and
      across the major axis (px): an area's side, the same for a round and an elongated
      source of one area;
    - ``concentration``, ``asymmetry``, ``gini``, ``m20``: as ``morphology`` defines them;
    - ``ellipticity``: ``1 - width / length``;
    - ``orientation``: position angle of the major axis in degrees, in [0, 180),
      counter-clockwise from ``+x`` (0 for a round source);
    - ``offset``: distance of the light's centroid from the image centre (px);
    - ``background``: the median of the outermost ring of pixels of the summed bands,
      before cleaning: the sky level or pedestal the source sits on;
    - ``colour_cK_cK+1``: ``-2.5 log10(F_K / F_K+1)`` of the positive fluxes of adjacent
      bands (higher is redder when bands run from blue to red); NaN when either is 0.

    A descriptor undefined for the image (an empty image) is NaN.
    """
    image = np.asarray(image, dtype=np.float64)
    cleaned = morphology.clean(image.sum(axis=0))
    moments = morphology.hillas(cleaned)
    angle = moments["orientation"]
    values = [
        moments["size"],
        math.sqrt(moments["length"] * moments["width"]),
        morphology.concentration(cleaned),
        morphology.asymmetry(cleaned),
        moments["ellipticity"],
        morphology.gini(cleaned),
        morphology.m20(cleaned),
        math.degrees(angle) % 180.0 if np.isfinite(angle) else math.nan,
        moments["distance"],
        float(np.median(_border(image.sum(axis=0)))),
    ]
    if len(image) > 1:
        flux = np.clip(image, 0.0, None).sum(axis=(1, 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            colours = -2.5 * np.log10(flux[:-1] / flux[1:])
        values.extend(np.where((flux[:-1] > 0) & (flux[1:] > 0), colours, np.nan).tolist())
    return np.asarray(values, dtype=np.float64)


def _border(image: np.ndarray) -> np.ndarray:
    """The outermost ring of pixels of a 2-D image."""
    if min(image.shape) <= 2:
        return image.ravel()
    return np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])


def sample_index(n: int, limit: int = MAX_DESCRIBED, seed: int = 0) -> np.ndarray:
    """Every item when ``n <= limit``, else a fixed random sample of ``limit``, sorted."""
    if n <= limit:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False)).astype(np.int64)


def describe_images(images: np.ndarray, index: np.ndarray, batch_size: int = 256
                    ) -> np.ndarray:
    """``(len(index), d)`` descriptors of ``images[index]`` (``(n, c, h, w)``, possibly
    memory-mapped: read ``batch_size`` at a time)."""
    out = np.empty((len(index), len(descriptor_names(images.shape[1]))), dtype=np.float64)
    for start in range(0, len(index), batch_size):
        batch = np.asarray(images[index[start:start + batch_size]], dtype=np.float64)
        for i, image in enumerate(batch):
            out[start + i] = describe_image(image)
    return out


def mann_whitney(inside: np.ndarray, outside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(delta, p)`` per column of ``inside`` (``(n1, d)``) against ``outside``
    (``(n2, d)``): Cliff's delta (``2 U / (n1 n2) - 1``, U of ``inside``) and the
    two-sided Mann-Whitney p-value, each column's NaN values dropped; both NaN for a
    column where either side is empty."""
    from scipy.stats import mannwhitneyu

    inside = np.asarray(inside, dtype=np.float64)
    outside = np.asarray(outside, dtype=np.float64)
    d = inside.shape[1]
    # One vectorised test of all the columns costs what one column does (scipy's checks
    # dominate: 2 ms a call, 80 calls a card). It gives each column's own answer only
    # with no NaN to drop, and with both sides above 8, where scipy's choice of the
    # asymptotic method does not depend on ties, which it checks over all the columns.
    if min(len(inside), len(outside)) > 8 and np.isfinite(inside).all() \
            and np.isfinite(outside).all():
        result = mannwhitneyu(inside, outside, alternative="two-sided", axis=0)
        delta = 2.0 * np.asarray(result.statistic) / (len(inside) * len(outside)) - 1.0
        return delta.astype(np.float64), np.asarray(result.pvalue, dtype=np.float64)
    delta, p = np.full(d, math.nan), np.full(d, math.nan)
    for column in range(d):
        a, b = inside[:, column], outside[:, column]
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if len(a) and len(b):
            result = mannwhitneyu(a, b, alternative="two-sided")
            delta[column] = 2.0 * result.statistic / (len(a) * len(b)) - 1.0
            p[column] = result.pvalue
    return delta, p


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's step-down correction of a family of p-values (NaN ones are left out of the
    family and stay NaN)."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full_like(p, np.nan)
    known = np.flatnonzero(np.isfinite(p))
    order = known[np.argsort(p[known], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def phrase(name: str, delta: float, band_names: list[str] | None = None) -> str:
    """What a cluster is when descriptor ``name`` is higher (``delta > 0``) or lower; a
    colour in the names of its bands (``redder in g - r``) when ``band_names`` (one per
    channel) are known."""
    if name.startswith("colour_"):
        numbers = re.fullmatch(r"colour_c(\d+)_c(\d+)", name)
        if numbers and band_names and int(numbers[2]) < len(band_names):
            bands = f"{band_names[int(numbers[1])]} - {band_names[int(numbers[2])]}"
        else:
            bands = name.removeprefix("colour_").replace("_", "-")
        return f"{'redder' if delta > 0 else 'bluer'} in {bands}"
    higher, lower = WORDS.get(name, (f"higher {name}", f"lower {name}"))
    return higher if delta > 0 else lower


def cluster_cards(descriptors: np.ndarray, names: list[str], labels: np.ndarray,
                  described: np.ndarray | None = None, X: np.ndarray | None = None,
                  truth: np.ndarray | None = None, class_names: list[str] | None = None,
                  ids: np.ndarray | None = None, effect_threshold: float = EFFECT_THRESHOLD,
                  alpha: float = ALPHA, typical: int = TYPICAL,
                  band_names: list[str] | None = None) -> list[dict[str, Any]]:
    """A card per cluster (noise, ``-1``, included), in cluster order.

    ``labels`` and ``truth`` cover every item; ``descriptors`` (``(m, d)``, columns
    ``names``) cover the items ``described`` (every item when None). Each card: ``cluster``,
    ``size`` and ``fraction`` (of every item), ``descriptors`` (per descriptor: ``name``,
    ``median`` in the cluster and ``median_rest``, ``delta``, ``p``, ``p_holm``, ``apart``
    and its ``phrase``), ``apart`` (the phrases of the descriptors that set it apart,
    largest effect first, with their delta), ``typical`` and ``atypical`` (the ids, or
    indices, of the members nearest and farthest from its centroid in ``X``; none for
    noise) and, when ``truth`` is given, ``classes`` (class name -> members). Colours are
    phrased in ``band_names`` (one per channel) when given.
    """
    labels = np.asarray(labels)
    described = np.arange(len(labels)) if described is None else np.asarray(described)
    descriptors = np.asarray(descriptors, dtype=np.float64)
    if descriptors.shape != (len(described), len(names)):
        raise ValueError(f"descriptors of shape {descriptors.shape}, expected "
                         f"({len(described)}, {len(names)})")
    sample = labels[described]
    cards = []
    for cluster in np.unique(labels):
        members = labels == cluster
        inside = sample == cluster
        deltas, ps = mann_whitney(descriptors[inside], descriptors[~inside])
        rows = []
        for column, name in enumerate(names):
            values = descriptors[:, column]
            rows.append({"name": name, "median": _median(values[inside]),
                         "median_rest": _median(values[~inside]),
                         "delta": float(deltas[column]), "p": float(ps[column])})
        for row, corrected in zip(rows, holm(np.array([r["p"] for r in rows])), strict=True):
            row["p_holm"] = float(corrected)
            row["apart"] = bool(np.isfinite(row["delta"]) and abs(row["delta"]) >= effect_threshold
                                and np.isfinite(corrected) and corrected < alpha)
            row["phrase"] = (phrase(row["name"], row["delta"], band_names)
                             if np.isfinite(row["delta"]) else "")
        apart = sorted((r for r in rows if r["apart"]), key=lambda r: -abs(r["delta"]))
        card: dict[str, Any] = {
            "cluster": int(cluster), "size": int(members.sum()),
            "fraction": float(members.mean()), "described": int(inside.sum()),
            "descriptors": rows,
            "apart": [f"{r['phrase']} (delta {r['delta']:+.2f})" for r in apart],
        }
        card["typical"], card["atypical"] = _typical(X, members, ids, typical) \
            if X is not None and cluster != -1 else ([], [])
        if truth is not None:
            card["classes"] = _class_mix(np.asarray(truth)[members], class_names)
        cards.append(card)
    return cards


def _median(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else math.nan


def _typical(X: np.ndarray, members: np.ndarray, ids: np.ndarray | None, count: int
             ) -> tuple[list, list]:
    """The members nearest and farthest from their centroid in ``X``, nearest first and
    farthest first."""
    where = np.flatnonzero(members)
    points = np.asarray(X[where], dtype=np.float64)
    distance = ((points - points.mean(axis=0)) ** 2).sum(axis=1)
    order = where[np.argsort(distance, kind="stable")]
    named = (lambda items: [str(ids[i]) for i in items]) if ids is not None else \
        (lambda items: [int(i) for i in items])
    return named(order[:count]), named(order[::-1][:count])


def _class_mix(truth: np.ndarray, class_names: list[str] | None) -> dict[str, int]:
    names = class_names or []
    counts: dict[str, int] = {}
    for code, count in zip(*np.unique(truth, return_counts=True), strict=True):
        name = ("unlabelled" if code < 0 else
                str(names[code]) if code < len(names) else str(int(code)))
        counts[name] = counts.get(name, 0) + int(count)
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def quantile_bins(values: np.ndarray, bins: int) -> np.ndarray:
    """Each value's bin among ``bins`` of (nearly) equal counts, by rank; tied values
    share a bin."""
    from scipy.stats import rankdata

    ranks = rankdata(values, method="average")
    return np.minimum(((ranks - 0.5) * bins / len(values)).astype(np.int64), bins - 1)


def nuisance_check(labels: np.ndarray, descriptors: np.ndarray, names: list[str],
                   truth: np.ndarray | None = None, nuisances: tuple[str, ...] = NUISANCES,
                   permutations: int = PERMUTATIONS, seed: int = 0) -> dict[str, Any]:
    """How much each descriptor explains a clustering, judged against chance and against
    the descriptors that are physics, over the clustered items (noise left out).

    For every descriptor: the mutual information between the clusters and the descriptor
    binned into as many quantiles as there are clusters (2 to ``MAX_BINS``), as the
    adjusted mutual information (``sklearn.metrics.adjusted_mutual_info_score``: 0 is
    what a random partition of the same sizes scores, 1 a perfect match). The
    clustering *follows* the nuisance of ``nuisances`` (names of ``names``) that
    explains it best when that one explains at least ``NUISANCE_EFFECT`` of it,
    explains it at least as well as every other descriptor (the physics), and is
    significant at ``ALPHA`` under a permutation null (``permutations`` shuffles of the
    clusters), Bonferroni-corrected over the nuisances. Labels never decide it: with
    ``truth``, ``labels`` is the NMI between clusters and classes, for the cards.

    Returns each nuisance's AMI under its name and, for the one tested, its corrected p
    under ``<name>_p`` (NaN for the others: they could not be followed);
    ``physics`` (the best AMI of the other descriptors) and ``physics_name``; ``flag``
    (1.0 when it follows a nuisance) and ``follows`` (that nuisance, or ""). NaN with
    fewer than two clusters."""
    from sklearn.metrics import adjusted_mutual_info_score as ami
    from sklearn.metrics import normalized_mutual_info_score as nmi

    labels = np.asarray(labels)
    descriptors = np.asarray(descriptors, dtype=np.float64)
    clustered = labels != -1
    k = len(np.unique(labels[clustered]))
    effect = np.full(len(names), math.nan)
    binned: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for column in range(len(names)) if k >= 2 else ():
        values = descriptors[:, column]
        keep = clustered & np.isfinite(values)
        if len(np.unique(labels[keep])) < 2 or len(np.unique(values[keep])) < 2:
            continue
        bins = quantile_bins(values[keep], min(max(k, 2), MAX_BINS))
        effect[column] = ami(labels[keep], bins)
        binned[column] = keep, bins
    out: dict[str, Any] = {}
    for name in nuisances:
        out[name] = float(effect[names.index(name)]) if name in names else math.nan
        out[f"{name}_p"] = math.nan
    physics = [c for c, name in enumerate(names) if name not in nuisances
               and np.isfinite(effect[c])]
    best_physics = max(physics, key=lambda c: effect[c], default=None)
    out["physics"] = float(effect[best_physics]) if best_physics is not None else math.nan
    out["physics_name"] = names[best_physics] if best_physics is not None else ""
    candidates = {name: out[name] for name in nuisances if np.isfinite(out[name])}
    top = max(candidates, key=candidates.get) if candidates else ""
    # Only the nuisance that could be followed is tested: the shuffles are most of the
    # check's cost, and no other one's p-value can change the answer.
    follows = bool(top) and out[top] >= NUISANCE_EFFECT and not out["physics"] > out[top]
    if follows:
        keep, bins = binned[names.index(top)]
        sample = np.zeros(len(labels), dtype=bool)
        sample[sample_index(len(labels), PERMUTATION_ITEMS, seed)] = True
        tested = labels[keep & sample]
        if len(np.unique(tested)) >= 2:
            (raw,) = permutation_p(tested, [bins[sample[keep]]], permutations, seed,
                                   stop_above=ALPHA / len(candidates))
            out[f"{top}_p"] = min(1.0, raw * len(candidates))
        follows = out[f"{top}_p"] < ALPHA
    out["flag"] = float(follows)
    out["follows"] = top if follows else ""
    if truth is not None:
        truth = np.asarray(truth)
        keep = clustered & (truth >= 0)
        out["labels"] = float(nmi(labels[keep], truth[keep])) if k >= 2 and keep.any() \
            else math.nan
    return out


def permutation_p(labels: np.ndarray, binned: list[np.ndarray], permutations: int,
                  seed: int = 0, chunk: int = 200, stop_above: float = 1.0) -> list[float]:
    """One-sided p-value of the mutual information between ``labels`` and each of
    ``binned`` (codings of the same items) against ``permutations`` random shuffles of
    ``labels``, shared by all of them: ``(1 + as high) / (1 + shuffles)``, the chance of
    an association this strong when there is none. A coding whose p-value can no longer
    reach ``stop_above``, however the shuffles left fall, is not shuffled further: its
    p-value is then the one of the shuffles done."""
    codes = np.unique(labels, return_inverse=True)[1].reshape(-1)
    binned = [np.asarray(bins, dtype=np.int64) for bins in binned]
    observed = [mutual_information(codes[None], bins)[0] - 1e-12 for bins in binned]
    higher, done = np.zeros(len(binned)), np.zeros(len(binned))
    rng = np.random.default_rng(seed)
    for start in range(0, permutations, chunk):
        # Shuffled on while the shuffles left could still bring it to stop_above.
        live = [i for i in range(len(binned))
                if (1 + higher[i]) / (1 + permutations) <= stop_above]
        if not live:
            break
        size = min(chunk, permutations - start)
        shuffled = rng.permuted(np.broadcast_to(codes, (size, len(codes))), axis=1)
        for i in live:
            higher[i] += int((mutual_information(shuffled, binned[i]) >= observed[i]).sum())
            done[i] += size
    return [float((1 + h) / (1 + d)) for h, d in zip(higher, done, strict=True)]


def mutual_information(codes: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Mutual information (nats) between each row of ``codes`` (``(m, n)`` integer
    codings) and ``bins`` (``(n,)``), from their contingency tables, all rows at once."""
    rows, n = codes.shape
    kc, kb = int(codes.max()) + 1, int(bins.max()) + 1
    cells = (np.arange(rows)[:, None] * kc + codes) * kb + bins
    joint = np.bincount(cells.ravel(), minlength=rows * kc * kb).reshape(rows, kc, kb) / n
    outer = joint.sum(axis=2, keepdims=True) * joint.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log(joint / outer), 0.0)
    return terms.sum(axis=(1, 2))


def nuisance_sentence(check: dict[str, Any]) -> str:
    """One line on a flagged clustering (empty when not flagged)."""
    if not check.get("flag"):
        return ""
    name = check["follows"]
    line = f"These clusters mostly follow {name} (AMI {check[name]:.2f}"
    if check.get("physics_name"):
        line += f", against {check['physics']:.2f} for {check['physics_name']}, the best " \
                "of the other descriptors"
    label_nmi = check.get("labels")
    if label_nmi is not None and np.isfinite(label_nmi):
        line += f"; NMI {label_nmi:.2f} with the classes"
    return line + ")."


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, for JSON."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


#: the columns of ``cards.csv``: a row per cluster and descriptor
CSV_COLUMNS = ("cluster", "size", "descriptor", "median", "median_rest", "delta", "p",
               "p_holm", "apart", "phrase")


def csv_rows(cards: list[dict[str, Any]]) -> list[list[Any]]:
    """The rows of ``cards.csv`` (``CSV_COLUMNS``)."""
    return [[card["cluster"], card["size"], row["name"], row["median"], row["median_rest"],
             row["delta"], row["p"], row["p_holm"], int(row["apart"]), row["phrase"]]
            for card in cards for row in card["descriptors"]]
