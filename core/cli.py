"""The ``clustergrid`` command line. Errors a user can fix print as one line and exit non-zero."""

from __future__ import annotations

import json
import os
import shutil
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from clustergrid.errors import ClustergridError, Interrupted

app = typer.Typer(
    help="Run every combination of datasets, encoders, reducers and clusterers; compare them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# soft_wrap: never break a path or command across lines. markup=False: labels such as
# pca[n_components=10] and user-supplied names must print as written, not as Rich markup.
console = Console(soft_wrap=True, markup=False)
errors = Console(stderr=True, soft_wrap=True, markup=False)

TrackingOption = Annotated[
    str | None,
    typer.Option("--tracking-uri", help="MLflow store: a URI, or a folder for a local store "
                 "(default: ./clustergrid-runs, or the experiment's tracking.uri)."),
]


class TableFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


class ReportFormat(StrEnum):
    html = "html"
    markdown = "markdown"


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="Experiment YAML file.")],
    dry_run: Annotated[bool, typer.Option(help="Print the plan; run nothing.")] = False,
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1, help="Worker processes (overrides executor.workers).")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume/--no-resume", help="Skip combinations that already have a FINISHED run.")] = True,
    tracking_uri: TrackingOption = None,
    report: Annotated[Path | None, typer.Option(
        "--report", help="Where to write the HTML report (default: in the store folder).")] = None,
    wait: Annotated[bool, typer.Option(
        "--wait", help="If another run of this experiment holds the store, wait for it "
        "(default: refuse).")] = False,
    max_combinations: Annotated[int | None, typer.Option(
        "--max-combinations", min=1, envvar="CLUSTERGRID_MAX_COMBINATIONS",
        help="Refuse grids larger than this (default 10,000: a sweep written by "
        "mistake).")] = None,
) -> None:
    """Run an experiment: every combination not yet finished, each logged to MLflow.

    Exit status: 0 every combination finished; 1 some failed (all are logged and the
    report is written); 2 a bad experiment file or arguments; 130 interrupted (Ctrl-C).
    """
    from clustergrid import runner
    from clustergrid.registry import Registry
    from clustergrid.spec import MAX_COMBINATIONS, check_grid_size, load_experiment

    registry = Registry.load()
    experiment = load_experiment(file, registry)
    if dry_run:  # needs no confirmation: it is how one looks at a large grid first
        _plan, preview = runner.dry_run(experiment, registry, tracking_uri, resume)
        _print_preview(experiment.name, preview)
        console.print("Dry run: nothing was run.")
        return
    check_grid_size(experiment, max_combinations or MAX_COMBINATIONS)

    from clustergrid.progress import StepProgress

    try:
        with StepProgress(console) as progress:
            summary = runner.run(
                experiment, registry, tracking_uri=tracking_uri, workers=workers,
                resume=resume, on_start=lambda preview: (
                    _print_preview(experiment.name, preview), progress.start(preview)),
                on_outcome=progress.advance, wait=wait,
            )
    except KeyboardInterrupt:
        # Outside the steps (the runner says what it kept during them); Typer would
        # print "Aborted!" and exit 1.
        raise Interrupted("interrupted: finished steps are cached and complete "
                          "combinations logged; run again to resume") from None
    status = summary.step_status
    if summary.preview.to_run == 0:
        console.print("Nothing to run: every combination already has a FINISHED run "
                      "(--no-resume runs them again, from the cache).")
    else:
        console.print(
            f"Steps: {status['computed']} computed, {status['cached']} from cache, "
            f"{status['failed']} failed, {status['skipped']} skipped. "
            f"Combinations: {summary.finished} finished, {len(summary.failed)} failed "
            f"({summary.wall_time:.1f} s).",
            highlight=False,
        )
    for label, error in summary.failed:
        errors.print(f"FAILED {label}: {error}", style="red", highlight=False)
    report_path = _write_report(experiment.name, tracking_uri or experiment.tracking_uri,
                                report, summary)
    console.print(f"Results: clustergrid results {experiment.name}"
                  + (f" --tracking-uri {tracking_uri}" if tracking_uri else ""))
    console.print(f"MLflow store: {summary.tracking_uri}")
    console.print(f"Report: {report_path}")
    if summary.failed:
        raise typer.Exit(1)


def _print_preview(name: str, preview) -> None:
    from rich.table import Table

    console.print(
        f"Experiment {name}: {preview.combinations} combinations, "
        f"{preview.finished} already finished, {preview.to_run} to run.",
        highlight=False,
    )
    table = Table("stage", "unique steps", "cached", "to compute", box=None)
    for stage, (total, cached) in preview.steps.items():
        if total or stage in ("data", "encode", "reduce", "cluster", "score"):
            table.add_row(stage, str(total), str(cached), str(total - cached))
    console.print(table)


def _write_report(name: str, tracking_uri: str | None, path: Path | None, summary) -> Path:
    from clustergrid.report import write_report
    from clustergrid.tracking import Tracker

    if path is None:
        path = summary.cache_root.parent / "reports" / f"{name}.html"
    write_report(tracking_uri, name, path)
    if summary.parent_run_id:
        Tracker(tracking_uri, name).log_file(summary.parent_run_id, path)
    return path


@app.command()
def plugins(
    kind: Annotated[str | None, typer.Option(help="Only this kind, e.g. encoder.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List every component with its plugin, version and parameters, and plugins that failed."""
    from clustergrid.components import KINDS
    from clustergrid.registry import Registry

    if kind is not None and kind not in KINDS:
        raise ClustergridError(f"unknown kind '{kind}' (kinds: {', '.join(KINDS)})")
    registry = Registry.load()
    components = [
        {
            "kind": info.kind,
            "name": info.name,
            "plugin": info.plugin,
            "distribution": info.distribution,
            "version": info.distribution_version,
            "parameters": {
                name: None if p.default is p.empty else p.default
                for name, p in info.cls.parameters().items()
            },
            "doc": info.cls.summary(),
        }
        for info in registry.all(kind)
    ]
    conflicts = [
        {"kind": k, "name": n, "owners": [i.owner for i in infos]}
        for (k, n), infos in registry.conflicts.items() if kind in (None, k)
    ]
    failures = [
        {"plugin": f.plugin, "distribution": f.distribution, "error": f.error,
         "traceback": f.traceback}
        for f in registry.failures
    ]
    if as_json:
        data = {"components": components, "conflicts": conflicts, "failures": failures}
        typer.echo(json.dumps(data, indent=2, default=repr))
        return
    from rich.table import Table

    table = Table("kind", "name", "from", "parameters", "description")
    for c in components:
        params = ", ".join(f"{k}={v!r}" for k, v in c["parameters"].items())
        table.add_row(c["kind"], c["name"], f"{c['distribution']} {c['version']}", params, c["doc"])
    console.print(table)
    for conflict in conflicts:
        errors.print(f"CONFLICT {conflict['kind']} '{conflict['name']}' is registered by "
                     + " and ".join(conflict["owners"]), highlight=False)
    for failure in failures:
        errors.print(f"FAILED TO LOAD plugin '{failure['plugin']}' "
                     f"({failure['distribution']}): {failure['error']}", highlight=False)


@app.command()
def results(
    name: Annotated[str, typer.Argument(help="Experiment name (the file's `name:`).")],
    fmt: Annotated[TableFormat, typer.Option("--format", help="Output format.")] = "table",
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Write every column to this .parquet or .csv file instead.")
    ] = None,
    recommend: Annotated[bool, typer.Option(
        "--recommend", help="Print the label-free verdict instead: each dataset's pipelines "
        "ranked, with their evidence (see the README's Recommendation section).")] = False,
    alpha: Annotated[float, typer.Option(
        "--alpha", min=0.0, max=1.0,
        help="With --recommend: family-wise error rate of the test for structure.")] = 0.05,
    tracking_uri: TrackingOption = None,
) -> None:
    """Print one record per finished combination, read back from MLflow."""
    from clustergrid.results import load_results

    if output is not None and output.suffix not in (".parquet", ".csv"):
        raise ClustergridError(f"{output}: results are written as .parquet or .csv")
    frame = load_results(tracking_uri, name)
    if recommend:
        _print_recommendation(name, frame, fmt, alpha)
    elif output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        if output.suffix == ".parquet":
            frame.to_parquet(output, index=False)
        else:
            frame.to_csv(output, index=False)
        console.print(f"{len(frame)} combinations written to {output}")
    elif fmt == TableFormat.json:
        # json.dumps keeps every digit of a float (pandas' to_json rounds); NaN -> null.
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        typer.echo(json.dumps(records, indent=2))
    elif fmt == TableFormat.csv:
        typer.echo(frame.to_csv(index=False), nl=False)
    else:
        _print_results(name, frame)


def _print_recommendation(name: str, frame, fmt: TableFormat, alpha: float) -> None:
    from clustergrid.verdict import FLAGS, SCORE, recommend

    verdicts = recommend(frame, alpha)
    if fmt == TableFormat.json:
        records = [a.record() for v in verdicts for a in v.ranking]
        typer.echo(json.dumps(records, indent=2))
        return
    if fmt == TableFormat.csv:
        raise ClustergridError("--recommend prints a table or json, not csv")
    if not verdicts:
        console.print(f"No finished combinations with verdict evidence in '{name}'.")
        return
    # One line per pipeline rather than a table: pipeline names are long, and a table
    # squeezed into a terminal's width would cut them.
    for verdict in verdicts:
        console.print(f"\n{verdict.dataset}", style="bold")
        if verdict.structure:
            console.print(f"Recommended: {verdict.choice.pipeline}")
        else:
            console.print("No pipeline shows structure beyond its null reference: these "
                          "clusters are what any clustering finds in structureless data.")
        for a in verdict.ranking:
            console.print(
                f"{a.rank:>3}. {a.pipeline}\n     structure {'yes' if a.structure else 'no'}, "
                f"{SCORE} {a.score:.3f}, excess {a.excess:.1f} sd (p {a.p_value:.2g}), "
                f"stability {a.stability:.2f}, coverage {a.coverage:.2f}, "
                f"{a.clusters:.0f} clusters" + (f"; flags: {', '.join(a.flags)}"
                                                  if a.flags else ""))
        if verdict.grade:
            g = verdict.grade
            console.print(f"Against the labels (never used by the verdict): {g['metric']} of "
                          f"the first choice {g['choice']:.3f}, best in the grid "
                          f"{g['best']:.3f} ({g['best_pipeline']}).")
    raised = sorted({flag for v in verdicts for a in v.ranking for flag in a.flags})
    if raised:
        console.print("\nFlags:")
    for flag in raised:
        console.print(f"  {flag}: {FLAGS[flag]}")


def _print_results(name: str, frame) -> None:
    from rich.table import Table

    from clustergrid.results import component_labels, metric_columns

    if frame.empty:
        console.print(f"No finished combinations in '{name}'.")
        return
    from rich import box

    labels = component_labels(frame)
    # A role with one value for every row goes in the title, leaving room for the scores.
    constant = [c for c in labels.columns if labels[c].nunique(dropna=False) == 1]
    title = ", ".join(f"{c}: {labels[c].iloc[0]}" for c in constant)
    labels = labels.drop(columns=constant)
    metrics = metric_columns(frame, evidence=False)
    table = Table(*labels.columns, *metrics, title=title or None, box=box.SIMPLE_HEAD)
    for (_, components), (_, scores) in zip(labels.iterrows(), frame[metrics].iterrows(),
                                            strict=True):
        table.add_row(*map(str, components), *(f"{v:.3g}" for v in scores))
    console.print(table)


@app.command()
def report(
    name: Annotated[str, typer.Argument(help="Experiment name.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")] = Path(
        "report.html"),
    fmt: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.html,
    tracking_uri: TrackingOption = None,
) -> None:
    """Write the comparison report of an experiment, built from its MLflow runs."""
    from clustergrid.report import write_report

    path = write_report(tracking_uri, name, output, str(fmt))
    console.print(f"Report: {path}")


@app.command()
def labels(
    name: Annotated[str, typer.Argument(help="Experiment name.")],
    pipeline: Annotated[str, typer.Option(
        "--pipeline", "-p", help="The combination: its name as `results` prints it, or any "
        "part of it that only it contains, e.g. 'pca[n_components=10] / kmeans'.")],
    output: Annotated[Path, typer.Option(
        "-o", "--output", help="File to write: .fits, .vot (VOTable), .csv or .parquet.")],
    seed: Annotated[int | None, typer.Option(
        help="The seed, when the pipeline ran with several.")] = None,
    catalogue: Annotated[Path | None, typer.Option(
        help="Your own catalogue (.fits, .vot, .csv, .parquet): the clusters are added "
        "to its rows.")] = None,
    id_column: Annotated[str, typer.Option(
        "--id-column", help="With --catalogue: its column holding the item ids.")] = "id",
    tracking_uri: TrackingOption = None,
) -> None:
    """Write one combination's clusters as a catalogue: a row per item with its id, source
    file, cluster, membership probability or outlier score, map position and true class.

    Example: clustergrid labels quickstart -p 'pca[n_components=10] / kmeans' --seed 0
    -o clusters.fits
    """
    from clustergrid.export import cluster_table, join_catalogue, write_table

    table = cluster_table(tracking_uri, name, pipeline, seed)
    if catalogue is not None:
        table, matched = join_catalogue(table, catalogue, id_column)
        console.print(f"{matched} of {len(table)} catalogue rows matched an item.")
    write_table(table, output)
    console.print(f"{len(table)} rows ({', '.join(table.colnames)}) written to {output}")


@app.command()
def inspect(
    spec: Annotated[str, typer.Argument(help="A YAML file (an experiment or one dataset "
                                         "entry) or a YAML snippet, e.g. 'plugin: digits'.")],
    dataset: Annotated[int, typer.Option(help="Which dataset chain of an experiment.")] = 0,
    montage: Annotated[Path | None, typer.Option(
        help="Where to write the montage PNG (default: <dataset>-montage.png).")] = None,
    per_class: Annotated[int, typer.Option(min=1, help="Images per class in the montage.")] = 6,
) -> None:
    """Counts, shapes, labels, per-channel statistics and correlations, and a montage."""
    from rich.table import Table

    from clustergrid.inspection import inspect_dataset
    from clustergrid.inspection import montage as write_montage
    from clustergrid.registry import Registry
    from clustergrid.spec import parse_datasets

    registry = Registry.load()
    path = Path(spec)
    is_file = len(spec) < 4096 and "\n" not in spec and path.is_file()
    choices = parse_datasets(path.read_text() if is_file else spec, registry,
                             source=path if is_file else None)
    if not 0 <= dataset < len(choices):
        raise ClustergridError(f"--dataset {dataset}: the spec has {len(choices)} dataset "
                               "chain(s), numbered from 0")
    choice = choices[dataset]
    result = inspect_dataset(choice, registry, per_class=per_class)
    console.print(f"{result.name}: {result.n} items of shape {result.shape}", highlight=False)
    _print_skipped(result.skipped)
    labels = Table("class", "items", title="labels")
    for name, count in result.label_counts.items():
        labels.add_row(name, str(count))
    console.print(labels)
    channels = result.channel_labels()
    stats = Table("channel", "min", "max", "mean", "std", "NaN fraction", title="pixels")
    for channel, row in zip(channels, result.channel_stats, strict=True):
        stats.add_row(channel, *(f"{row[k]:.4g}" for k in
                                 ("min", "max", "mean", "std", "nan_fraction")))
    console.print(stats)
    correlation = Table("", *channels, title="channel correlation")
    for channel, row in zip(channels, result.correlation, strict=True):
        correlation.add_row(channel, *(f"{value:.3f}" for value in row))
    console.print(correlation)
    target = montage or Path(f"{choice.dataset.plugin}-montage.png")
    console.print(f"Montage: {write_montage(result, target)}")


def _print_skipped(skipped: list[tuple[str, str]]) -> None:
    """How many items the loader dropped (on_error: skip), and the first of them."""
    if not skipped:
        return
    from clustergrid.errors import listing

    console.print(f"{len(skipped)} item(s) skipped (on_error: skip):", highlight=False)
    console.print("  " + listing((f"{where}: {reason}" for where, reason in skipped),
                                 separator="\n  "), highlight=False)


@app.command()
def ui(
    tracking_uri: TrackingOption = None,
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 5000,
) -> None:
    """Open the MLflow UI on the local store (or --tracking-uri)."""
    from clustergrid.tracking import resolve_uri

    command = ui_command(resolve_uri(tracking_uri), port)
    console.print(" ".join(command))
    os.execvp(command[0], command)


def ui_command(uri: str, port: int) -> list[str]:
    mlflow = shutil.which("mlflow") or str(Path(sys.executable).parent / "mlflow")
    return [mlflow, "ui", "--backend-store-uri", uri, "--port", str(port)]


def main() -> None:
    import signal

    # SIGTERM (a batch system's stop, `kill`) ends a run as Ctrl-C does: what is complete
    # is logged, the invocation's run is marked KILLED, and the exit status says so.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        app()
    except Interrupted as exc:  # the summary of what was kept is the whole message
        errors.print(str(exc), highlight=False)
        raise SystemExit(exc.exit_code) from None
    except ClustergridError as exc:
        errors.print(f"error: {exc}", highlight=False)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        errors.print("interrupted: finished steps are cached; run again to resume.")
        raise SystemExit(130) from None
