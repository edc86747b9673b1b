"""The ``clustergrid`` command line. Errors a user can fix print as one line and exit non-zero."""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
from collections import Counter
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


def _print_version(value: bool) -> None:
    if value:
        from clustergrid import __version__

        console.print(f"clustergrid {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_print_version,
        help="Print the version and exit.")] = False,
) -> None:
    """Options of every command."""


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="Experiment YAML file.")],
    dry_run: Annotated[bool, typer.Option(help="Print the plan; run nothing.")] = False,
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1, help="Worker processes (overrides executor.workers).")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume/--no-resume", help="Skip combinations that already have a FINISHED run.")] = True,
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="Run again the combinations whose last run failed for lack "
        "of memory (a MemoryError, or a worker the operating system killed); by default "
        "a resumed run leaves them out, saying how many.")] = False,
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
    overrides: Annotated[list[str] | None, typer.Option(
        "--set", metavar="KEY=VALUE",
        help="Change one value of the file before it is checked, without editing it "
        "(repeatable): KEY is a dotted path (datasets.0.n_samples, executor.workers; "
        "a number indexes a list), VALUE is YAML ([0], null, {plugin: pca}). --dry-run "
        "honours it. Give a smaller run its own name (--set name=NAME-small) to keep "
        "its runs apart from the full one's.")] = None,
) -> None:
    """Run an experiment: every combination not yet finished, each logged to MLflow.

    Steps run in worker processes, even with one worker: a step that crashes or runs out
    of memory fails alone and the rest of the grid goes on. Each worker may use its share
    of the memory available (CLUSTERGRID_WORKER_MEMORY=2GB sets it; none: no limit).

    Exit status: 0 every combination finished; 1 some failed, or were left out because
    they failed for lack of memory last time (all are logged and the report is written);
    2 a bad experiment file or arguments; 130 interrupted (Ctrl-C).

    Examples:

    clustergrid run experiments/quickstart.yaml
    clustergrid run experiments/quickstart.yaml --dry-run
    clustergrid run mine.yaml --workers 4 --tracking-uri /data/clustergrid-runs

    clustergrid run experiments/galaxy_zoo.yaml --set datasets.0.n_samples=200 --set 'seeds=[0]'
    """
    from clustergrid import runner
    from clustergrid.registry import Registry
    from clustergrid.spec import MAX_COMBINATIONS, check_grid_size, load_experiment

    registry = Registry.load()
    experiment = load_experiment(file, registry, overrides=overrides or ())
    if dry_run:  # needs no confirmation: it is how one looks at a large grid first
        _plan, preview = runner.dry_run(experiment, registry, tracking_uri, resume,
                                        retry_failed, workers=workers)
        _print_preview(experiment.name, preview)
        console.print("Dry run: nothing was run.")
        return
    check_grid_size(experiment, max_combinations or MAX_COMBINATIONS)

    from clustergrid.progress import StepProgress

    failed_steps = []  # the steps that failed here, in order: what failed combinations share

    def on_outcome(outcome) -> None:
        progress.advance(outcome)
        if outcome.status == "failed":
            failed_steps.append(outcome)

    try:
        # Its last line (how far the run got) is printed on Ctrl-C and SIGTERM too.
        with StepProgress(console) as progress:
            summary = runner.run(
                experiment, registry, tracking_uri=tracking_uri, workers=workers,
                resume=resume, on_start=lambda preview: (
                    _print_preview(experiment.name, preview), progress.start(preview)),
                on_outcome=on_outcome, wait=wait, retry_failed=retry_failed,
            )
    except KeyboardInterrupt:
        # Outside the steps (the runner says what it kept during them); Typer would
        # print "Aborted!" and exit 1.
        raise Interrupted("interrupted: finished steps are cached and complete "
                          "combinations logged; run again to resume") from None
    status = summary.step_status
    if summary.preview.to_run == 0:
        if not summary.preview.out_of_memory:
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
    for line in _failure_lines(summary.failed, failed_steps):
        errors.print(line, style="red", highlight=False)
    if summary.skipped:
        console.print(_skipped_line(summary.skipped, summary.skipped_list), style="yellow",
                      highlight=False)
    from clustergrid.locations import locate

    where = locate(experiment, tracking_uri)
    store = where.store
    report_path = _write_report(experiment.name, store, report or where.report(experiment.name),
                                summary)
    # The file's store is absolute by now: the command works from any folder.
    console.print(f"Results: clustergrid results {experiment.name}"
                  + (f" --tracking-uri {store}" if store else ""))
    console.print(f"MLflow store: {summary.tracking_uri}")
    console.print(f"Report: {report_path}")
    if summary.failed or summary.preview.out_of_memory:
        raise typer.Exit(1)


def _skipped_line(skipped: list[tuple[str, str, str]], where: str | None) -> str:
    """How many items the datasets dropped (on_error: skip), and where their list is."""
    counts = Counter(dataset for dataset, _, _ in skipped)
    within = (f" from {next(iter(counts))}" if len(counts) == 1 else
              ": " + ", ".join(f"{count} from {dataset}" for dataset, count in counts.items()))
    return (f"{len(skipped)} item{'s' if len(skipped) > 1 else ''} skipped "
            f"(on_error: skip){within}; the list, with why: {where}")


def _failure_lines(failed: list[tuple[str, str]], failed_steps: list) -> list[str]:
    """One line per failed step with the number of combinations it failed (a dataset
    that cannot be read fails every combination on it, with the same error); a step
    failing one combination, or an error no step of this run gave, names the combination."""
    # A combination failed by a step's failure (or skipped after it) carries its error.
    by_error: dict[str, list[str]] = {}
    for label, error in failed:
        by_error.setdefault(error, []).append(label)
    lines = []
    for step in failed_steps:
        labels = by_error.pop(step.error or "", [])
        if len(labels) > 1:
            lines.append(f"FAILED {step.stage} step: {step.error} "
                         f"({len(labels)} combinations)")
        elif labels:
            lines.append(f"FAILED {labels[0]}: {step.error}")
    lines += [f"FAILED {label}: {error}" for error, labels in by_error.items()
              for label in labels]
    return lines


def _print_preview(name: str, preview) -> None:
    from rich.table import Table

    from clustergrid import stages

    console.print(
        f"Experiment {name}: {preview.combinations} combinations, "
        f"{preview.finished} already finished, {preview.to_run} to run.",
        highlight=False,
    )
    # A dry run knows each stage's largest memory (``costs.dry_run_memory``).
    memory = preview.memory if preview.worker_memory is not None else {}
    table = Table("stage", "unique steps", "cached", "to compute",
                  *(["largest memory"] if memory else []), box=None)
    for stage, (total, cached) in preview.steps.items():
        declared = stages.get(stage)
        # The pipeline's own stages always; the others where the plan has steps of theirs.
        if total or (declared.role == "pipeline" and not declared.optional):
            table.add_row(stage, str(total), str(cached), str(total - cached),
                          *([_memory_cell(memory.get(stage), preview.worker_memory)]
                            if memory else []))
    console.print(table)
    for line in preview.warnings:  # costly clusterings (``clustergrid.costs``)
        console.print(f"Warning: {line}", style="yellow", highlight=False)
    for line, style in _memory_lines(preview):
        console.print(line, style=style, highlight=False)
    if preview.out_of_memory:
        some = preview.out_of_memory
        console.print(f"{some} combination{'s' if some > 1 else ''} failed for lack of memory "
                      "last time; --retry-failed to try them again.", style="yellow",
                      highlight=False)


def _memory_cell(need, worker):
    """A stage's largest memory, marked when it exceeds what a worker has."""
    from rich.text import Text

    from clustergrid.memory import human_bytes

    if need is None:
        return ""
    if worker.free is not None and need.bytes > worker.free:
        return Text(f"{human_bytes(need.bytes)}, refused", style="red")
    return human_bytes(need.bytes)


def _memory_lines(preview) -> list[tuple[str, str | None]]:
    """What a worker has and, for each stage whose largest step needs more, the line it
    will be refused with (``memory.refusal``); nothing outside a dry run."""
    from clustergrid.memory import refusal

    worker = preview.worker_memory
    if worker is None:
        return []
    lines: list[tuple[str, str | None]] = [(f"Memory: a worker has {worker.describe()}; "
                                           "a step that needs more is refused.", None)]
    for stage, need in preview.memory.items():
        if worker.free is not None and need.bytes > worker.free:
            lines.append((f"Refused: {stage} step: {refusal(need, worker, need.built)}",
                          "yellow"))
    return lines


def _write_report(name: str, tracking_uri: str | None, path: Path, summary) -> Path:
    from clustergrid.report import write_report
    from clustergrid.tracking import Tracker

    write_report(tracking_uri, name, path)
    if summary.parent_run_id:
        Tracker(tracking_uri, name).log_file(summary.parent_run_id, path)
    return path


@app.command()
def plugins(
    name: Annotated[str | None, typer.Argument(
        help="Show this component in full: every parameter with its default and type, "
        "and its whole docstring.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only this kind, e.g. encoder.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List every component with its plugin, version and parameters; or one in full.

    A plugin that failed to load is listed with its error and traceback,
    and the exit status is then 1.

    Examples:

    clustergrid plugins --kind clusterer
    clustergrid plugins kmeans
    clustergrid plugins --json
    """
    from clustergrid.components import KINDS
    from clustergrid.registry import Registry

    if kind is not None and kind not in KINDS:
        raise ClustergridError(f"unknown kind '{kind}' (kinds: {', '.join(KINDS)})")
    registry = Registry.load()
    infos = registry.all(kind) if name is None else _named(registry, name, kind)
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
        for info in infos
    ]
    conflicts = [
        {"kind": k, "name": n, "owners": [i.owner for i in registered],
         "spellings": [i.qualified_name for i in registered]}
        for (k, n), registered in registry.conflicts.items()
        if kind in (None, k) and name in (None, n)
    ]
    failures = [
        {"plugin": f.plugin, "distribution": f.distribution, "error": f.error,
         "traceback": f.traceback}
        for f in registry.failures
    ] if name is None else []
    if as_json:  # failures are in the data; a script reads them there
        data = {"components": components, "conflicts": conflicts, "failures": failures}
        typer.echo(json.dumps(data, indent=2, default=repr))
        return
    if name is not None:
        for number, info in enumerate(infos):
            if number:
                console.print()
            _print_component(info)
    else:
        from rich import box
        from rich.table import Table

        # A table per kind; wrapped, never cut: the parameters are what a user came to
        # read, one a line.
        for shown in dict.fromkeys(c["kind"] for c in components):
            table = Table(title=f"{shown}s", box=box.SIMPLE_HEAD)
            table.add_column("name", overflow="fold")
            table.add_column("from", overflow="fold")
            table.add_column("parameters", overflow="fold", ratio=3)
            table.add_column("description", overflow="fold", ratio=2)
            for c in components:
                if c["kind"] == shown:
                    table.add_row(c["name"], f"{c['distribution']}\n{c['version']}",
                                  "\n".join(f"{k}={v!r}" for k, v in c["parameters"].items()),
                                  c["doc"])
            _fit(table)
            console.print(table, soft_wrap=False)
    for conflict in conflicts:
        errors.print(f"CONFLICT {conflict['kind']} '{conflict['name']}' is registered by "
                     + " and ".join(conflict["owners"]) + "; write "
                     + " or ".join(conflict["spellings"]), highlight=False)
    for failure in failures:
        errors.print(f"FAILED TO LOAD plugin '{failure['plugin']}' "
                     f"({failure['distribution']}): {failure['error']}", highlight=False)
        errors.print("  " + failure["traceback"].rstrip().replace("\n", "\n  "),
                     highlight=False)
    if failures:
        raise typer.Exit(1)


def _fit(table) -> None:
    """Let a table too wide for the terminal share the width among its ``ratio`` columns
    (wrapping them) rather than squeeze every column alike."""
    if table.__rich_measure__(console, console.options).maximum > console.width:
        table.expand = True


def _named(registry, name: str, kind: str | None) -> list:
    """The components ``name`` (or ``plugin:name``) means, of every kind or ``kind``: all
    of those registered under a name several plugins use. A ClustergridError if none."""
    from difflib import get_close_matches

    from clustergrid.components import KINDS
    from clustergrid.errors import PluginError

    found = []
    for k in [kind] if kind else KINDS:
        try:
            found.append(registry.get(k, name))
        except PluginError:
            found.extend(registry.conflicts.get((k, name), []))
    if found:
        return found
    message = f"no {kind or 'component'} named '{name}'"
    close = get_close_matches(name, sorted({info.name for info in registry.all(kind)}), n=3)
    message += f" (did you mean: {', '.join(close)}?)" if close else " (see `clustergrid plugins`)"
    if registry.failures:
        broken = ", ".join(sorted({failure.plugin for failure in registry.failures}))
        message += f"; plugins that failed to load: {broken}"
    raise ClustergridError(message)


def _print_component(info) -> None:
    """One component in full: where it comes from, its parameters, its docstring."""
    import inspect

    from rich import box
    from rich.table import Table

    from clustergrid.spec import parameter_rows

    console.print(f"{info.kind} {info.name}", style="bold", highlight=False)
    console.print(f"plugin: {info.plugin}, from {info.distribution} "
                  f"{info.distribution_version}"
                  + (f" (component version {info.cls.version})" if info.cls.version else ""),
                  highlight=False)
    rows = parameter_rows(info.cls)
    if rows:
        table = Table(box=box.SIMPLE_HEAD)
        for header in ("parameter", "default", "type"):
            table.add_column(header, overflow="fold", no_wrap=False)
        for row in rows:
            table.add_row(*row)
        console.print(table, soft_wrap=False)
    else:
        console.print("parameters: none")
    console.print()
    console.print(inspect.getdoc(info.cls) or "(no docstring)", highlight=False)


@app.command()
def results(
    name: Annotated[str, typer.Argument(help="Experiment name (the file's `name:`).")],
    fmt: Annotated[TableFormat, typer.Option(
        "--format", help="table: a row per pipeline, mean ± std over its seeds; csv, json: "
        "one record per combination, every column.")] = "table",
    metrics: Annotated[str | None, typer.Option(
        "--metrics", help="The table's metric columns, comma-separated, e.g. ari,silhouette "
        "(default: every score but the verdict's evidence).")] = None,
    per_seed: Annotated[bool, typer.Option(
        "--per-seed", help="The table has one row per combination (each seed) instead.")
    ] = False,
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Write every column to this .parquet or .csv file instead.")
    ] = None,
    recommend: Annotated[bool, typer.Option(
        "--recommend", help="Print the label-free verdict instead: each dataset's pipelines "
        "ranked, with their evidence (see the manual's page on the verdict, "
        "docs/verdict.md).")] = False,
    alpha: Annotated[float, typer.Option(
        "--alpha", min=0.0, max=1.0,
        help="With --recommend: family-wise error rate of the test for structure.")] = 0.05,
    tracking_uri: TrackingOption = None,
) -> None:
    """Print an experiment's results, read back from MLflow: a row per pipeline by default.

    The table: a numbered row per pipeline (the number `labels -p` takes), in
    the verdict's order when there is its evidence, each metric's mean ± std over
    the pipeline's seeds; under it, each number's full pipeline name. Metrics too
    many for the width go on to a second table. --per-seed: a row per combination.
    --format csv or json, and -o: every column of every combination.

    Examples:

    clustergrid results quickstart
    clustergrid results quickstart --metrics ari,silhouette --per-seed
    clustergrid results quickstart --format json > results.json
    clustergrid results quickstart -o results.parquet
    clustergrid results quickstart --recommend
    """
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
        _print_results(name, frame, metrics, per_seed)


def _print_recommendation(name: str, frame, fmt: TableFormat, alpha: float) -> None:
    from clustergrid import names
    from clustergrid.verdict import flag_text, recommend

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
    # A block per pipeline rather than a table: pipeline names are long, and a table
    # squeezed into a terminal's width would cut them. Each is numbered as `results`
    # numbers it, the number `labels -p` takes.
    from clustergrid.results import pipeline_order

    order = pipeline_order(frame)

    def say(text: str, indent: int = 0) -> None:
        # Prose breaks between words; a name inside it, being one word, only when wider
        # than the line.
        console.print(textwrap.fill(text, console.width, initial_indent=" " * indent,
                                    subsequent_indent=" " * (indent + 2 if indent else 2),
                                    break_on_hyphens=False), highlight=False)

    for verdict in verdicts:
        console.print()
        for line in names.wrap(verdict.dataset, console.width):
            console.print(line, style="bold", highlight=False)
        say(verdict.headline())
        for a in verdict.ranking:
            number = f"{'#' + str(order.number(a.name)):>4} "
            for index, line in enumerate(names.wrap(a.pipeline, console.width - len(number))):
                console.print((number if index == 0 else " " * len(number)) + line,
                              highlight=False)
            seeds = (f", seeds agree {a.seed_stability:.2f}" if a.seed_stability == a.seed_stability
                     else "")
            say(a.reason, indent=5)
            stability = "n/a" if a.stability != a.stability else f"{a.stability:.2f}"
            say(f"resampling stability {stability}{seeds}, coverage {a.coverage:.2f}, "
                f"{a.clusters:.0f} clusters" + (f"; flags: {', '.join(a.flags)}" if a.flags
                                                else ""), indent=5)
        if verdict.grade:
            g = verdict.grade
            say(f"Against the labels (never used by the verdict): {g['metric']} of the first "
                f"choice {g['choice']:.3f}, best in the grid {g['best']:.3f} "
                f"({g['best_pipeline']}).")
    raised = sorted({flag for v in verdicts for a in v.ranking for flag in a.flags})
    if raised:
        console.print("\nFlags:")
    for flag in raised:
        say(f"{flag}: {flag_text(flag)}", indent=2)


def _print_results(name: str, frame, metrics: str | None, per_seed: bool) -> None:
    """The table of ``results``: a row per pipeline (``per_seed``: per combination),
    numbered, and under it each numbered pipeline's full name.

    A pipeline's name runs to hundreds of characters with a real dataset's path, so no
    column holds it: the table shows each pipeline's number (the one ``labels -p``
    takes), its verdict when the combinations carry the verdict's evidence, the labels
    of the roles that vary between pipelines when they fit on one line, and the metrics.
    The legend under it gives each full name, wrapped between its components. Metric
    columns too many for the width side by side are split into several tables, each
    with the numbers (and verdicts) again: a header or a value is never cut. Rows are in
    ``results.pipeline_order``: by the verdict's rank within each dataset when there is
    evidence, else as the pipelines first ran."""
    from clustergrid.report.formatting import mean_spread
    from clustergrid.results import (
        pipeline_names,
        pipeline_order,
        summarize_over_seeds,
        varying_parts,
    )

    if frame.empty:
        console.print(f"No finished combinations in '{name}'.")
        return
    chosen = _chosen_metrics(frame, metrics)
    order = pipeline_order(frame)
    roles, short = varying_parts(order.names)
    notes = []
    if per_seed:
        rows = frame.assign(_name=pipeline_names(frame)).reset_index(drop=True)
        rows = rows.iloc[sorted(range(len(rows)), key=lambda i: (
            order.number(rows["_name"][i]), _seed_order(rows["param.seed"][i])))]
        cells = {metric: [mean_spread(value, None, "±") for value in rows[metric]]
                 for metric in chosen}
    else:
        rows = summarize_over_seeds(frame).rename(columns={"pipeline": "_name"})
        rows = rows.iloc[sorted(range(len(rows)), key=lambda i: order.number(rows["_name"][i]))]
        cells = {metric: [mean_spread(mean, std, "±") for mean, std in zip(
            rows[f"{metric} mean"], rows[f"{metric} std"], strict=True)] for metric in chosen}
        seeds = rows["seeds"].unique()
        if len(seeds) > 1:
            notes.append("mean ± std over each pipeline's seeds; --per-seed for each "
                         "combination")
        elif seeds[0] > 1:
            notes.append(f"mean ± std over {seeds[0]} seeds; --per-seed for each combination")
    names = list(rows["_name"])
    fixed = [("#", [str(order.number(n)) for n in names], "right")]
    if per_seed:
        fixed.append(("seed", list(rows["param.seed"]), "right"))
    if order.assessments:
        fixed.append(("verdict", [_verdict_cell(order.assessments.get(n)) for n in names],
                      "left"))
        notes.append("verdict: rows in the label-free verdict's order within each dataset; "
                     "1st: its choice; barred: a flag bars the pipeline (see --recommend)")
    varying = ((" / ".join(roles), [short[n] for n in names], "left") if roles else None)
    metric_columns = [(metric, cells[metric], "right") for metric in chosen]
    for number, table in enumerate(_fitting_tables(fixed, varying, metric_columns)):
        if number:
            console.print()
        console.print(table, soft_wrap=False)
    for note in notes:  # wrapped between words, at the terminal's width
        console.print(note, soft_wrap=False, highlight=False)
    console.print()
    _print_legend(order.names)


def _seed_order(seed: str) -> tuple[int, int]:
    return (0, int(seed)) if seed.lstrip("-").isdigit() else (1, 0)


def _verdict_cell(assessment) -> str:
    """A pipeline's standing in the verdict, in a word or two; never "best" when barred."""
    from clustergrid.verdict import BARRING

    if assessment is None:
        return ""
    if assessment.barred:
        return f"barred: {next(f for f in assessment.flags if f in BARRING)}"
    if assessment.follows:
        return f"follows {assessment.follows}"
    if not assessment.structure:
        return "no structure"
    return "1st" if assessment.rank == 1 else "ok"


def _fitting_tables(fixed: list[tuple], varying: tuple | None, metrics: list[tuple]) -> list:
    """The fewest tables that fit the console's width: every column in one, without
    the varying roles if they do not fit, else the metrics split among several tables,
    each with the ``fixed`` columns. A column is ``(header, cells, justify)``."""
    if varying is not None and _table_width(table := _results_table([*fixed, varying],
                                                                    metrics)) <= console.width:
        return [table]
    if _table_width(table := _results_table(fixed, metrics)) <= console.width:
        return [table]
    groups: list[list[tuple]] = [[]]
    for metric in metrics:
        if groups[-1] and _table_width(_results_table(fixed, [*groups[-1], metric])) \
                > console.width:
            groups.append([])
        groups[-1].append(metric)
    return [_results_table(fixed, group) for group in groups]


def _results_table(identity: list[tuple], metrics: list[tuple]):
    """A table of ``(header, cells, justify)`` columns, none of them wrapped: a column
    that would not fit is left out or moved to another table by ``_fitting_tables``."""
    from rich import box
    from rich.table import Table

    columns = [*identity, *metrics]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for header, _, justify in columns:
        table.add_column(header, justify=justify, no_wrap=True)
    for row in zip(*(cells for _, cells, _ in columns), strict=True):
        table.add_row(*row)
    return table


def _table_width(table) -> int:
    return table.__rich_measure__(console, console.options).maximum


def _print_legend(pipelines: list[str]) -> None:
    """Each numbered pipeline's full name, wrapped between its components to the width
    (``names.wrap``), its later lines indented under its first."""
    from clustergrid.names import wrap

    digits = len(str(len(pipelines)))
    indent = " " * (digits + 2)
    for number, pipeline in enumerate(pipelines, start=1):
        lines = wrap(pipeline, console.width - len(indent))
        console.print(f"{number:>{digits}}  {lines[0]}", highlight=False)
        for line in lines[1:]:
            console.print(indent + line, highlight=False)


def _chosen_metrics(frame, names: str | None) -> list[str]:
    """The metric columns ``--metrics`` names; by default, every score but the evidence."""
    from clustergrid.results import metric_columns

    if names is None:
        return metric_columns(frame, evidence=False)
    available = metric_columns(frame)
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in available]
    if unknown or not chosen:
        raise ClustergridError(f"--metrics: unknown metric {', '.join(unknown) or repr(names)} "
                               f"(available: {', '.join(available)})")
    return list(dict.fromkeys(chosen))


@app.command()
def report(
    name: Annotated[str, typer.Argument(help="Experiment name.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")] = Path(
        "report.html"),
    fmt: Annotated[ReportFormat, typer.Option(
        "--format", help="html: one self-contained page (leaderboard, heatmaps, verdict, "
        "maps); markdown: the leaderboard as a table for a README or paper.")
    ] = ReportFormat.html,
    tracking_uri: TrackingOption = None,
) -> None:
    """Write the comparison report of an experiment, built from its MLflow runs.

    Examples:

    clustergrid report quickstart -o report.html
    clustergrid report quickstart --format markdown -o results.md
    """
    from clustergrid.report import write_report

    path = write_report(tracking_uri, name, output, str(fmt))
    console.print(f"Report: {path}")


@app.command()
def experiments(tracking_uri: TrackingOption = None) -> None:
    """List the experiments a store holds, with their combinations, runs and last run.

    For each: combinations finished and failed (each by its latest run),
    how many times `clustergrid run` ran, and when it last started.

    Examples:

    clustergrid experiments
    clustergrid experiments --tracking-uri /data/clustergrid-runs
    """
    import time

    from rich import box
    from rich.table import Table

    from clustergrid.locations import resolve_uri
    from clustergrid.tracking import list_experiments

    found = list_experiments(tracking_uri)
    if not found:
        console.print(f"No clustergrid experiments in {resolve_uri(tracking_uri)}.")
        return
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("experiment", overflow="fold")
    for header in ("finished", "failed", "invocations"):
        table.add_column(header, justify="right")
    table.add_column("last run")
    for entry in found:
        table.add_row(entry["name"], str(entry["finished"]), str(entry["failed"]),
                      str(entry["invocations"]),
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(entry["last_run"] / 1000)))
    console.print(table, soft_wrap=False)
    console.print(f"Store: {resolve_uri(tracking_uri)}")


@app.command()
def labels(
    name: Annotated[str, typer.Argument(help="Experiment name.")],
    pipeline: Annotated[str, typer.Option(
        "--pipeline", "-p", help="The combination: its number in the table `results` "
        "prints, its name as `results` prints it (parameters in any order), or any part "
        "of it that only it contains, e.g. 'pca\\[n_components=10] / kmeans'.")],
    output: Annotated[Path, typer.Option(
        "-o", "--output", help="File to write: .fits, .vot (VOTable), .csv or .parquet.")],
    seed: Annotated[int | None, typer.Option(
        help="The seed, when the pipeline ran with several.")] = None,
    catalogue: Annotated[Path | None, typer.Option(
        help="Your own catalogue (.fits, .vot, .csv, .parquet): the clusters are added "
        "to its rows.")] = None,
    id_column: Annotated[str, typer.Option(
        "--id-column", help="With --catalogue: its column holding the item ids.")] = "id",
    cards: Annotated[Path | None, typer.Option(
        help="Also write the cluster cards, a row per cluster (same formats).")] = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Write one combination's clusters as a catalogue, a row per item.

    Each row: the item's id, source file, cluster, membership probability
    or outlier score, map position and true class.

    Examples:

    clustergrid labels quickstart --seed 0 -o clusters.fits \\
      -p 'pca\\[n_components=10] / kmeans\\[n_clusters=10]'
    clustergrid labels quickstart -p 3 --seed 0 -o clusters.fits
    """
    from clustergrid.export import (
        cards_of,
        choose,
        clusters_of,
        join_catalogue,
        table_format,
        write_table,
    )

    # Output names are checked before the store is read, so a typo costs nothing.
    for path, option in ((output, "-o"), (cards, "--cards")):
        if path is not None:
            table_format(path, option)
    chosen = choose(tracking_uri, name, pipeline, seed)
    table = clusters_of(chosen)
    if catalogue is not None:
        table, matched = join_catalogue(table, catalogue, id_column)
        console.print(f"{matched} of {len(table)} catalogue rows matched an item.")
    write_table(table, output)
    console.print(f"{len(table)} rows ({', '.join(table.colnames)}) written to {output}")
    if cards is not None:
        per_cluster = cards_of(chosen)
        write_table(per_cluster, cards)
        console.print(f"{len(per_cluster)} cluster cards written to {cards}")


@app.command()
def inspect(
    spec: Annotated[str, typer.Argument(help="A YAML file (an experiment or one dataset "
                                         "entry) or a YAML snippet, e.g. 'plugin: digits'.")],
    dataset: Annotated[int, typer.Option(help="Which dataset chain of an experiment.")] = 0,
    montage: Annotated[Path | None, typer.Option(
        help="Where to write the montage PNG (default: <dataset>-montage.png).")] = None,
    per_class: Annotated[int, typer.Option(min=1, help="Images per class in the montage.")] = 6,
) -> None:
    """Counts, shapes, labels, per-channel statistics and correlations, and a montage.

    Examples:

    clustergrid inspect experiments/quickstart.yaml
    clustergrid inspect 'plugin: digits' --per-class 4 --montage digits.png
    """
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


data_app = typer.Typer(
    help="Public datasets by name: list them, or fetch one into the local data folder "
    "($CLUSTERGRID_DATA, else ~/.cache/clustergrid/data).",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")

DataFolderOption = Annotated[Path | None, typer.Option(
    "--to", help="The data folder to use instead of $CLUSTERGRID_DATA or "
    "~/.cache/clustergrid/data; each dataset gets its own sub-folder.")]


@data_app.command("list")
def data_list(to: DataFolderOption = None) -> None:
    """Every public dataset `data fetch` knows, with its licence and citation.

    For each: what it holds, its size, its licence, how to cite it, where its checksums
    are published, and whether it is in the data folder.

    Examples:

    clustergrid data list
    """
    from clustergrid.public_data import CATALOGUE, data_folder, location

    console.print(f"Data folder: {data_folder(to)}", highlight=False)
    for dataset in CATALOGUE.values():
        where = location(dataset.name, to)
        console.print()
        console.print(f"{dataset.name}: {dataset.title} ("
                      + (f"fetched: {where}" if where.exists() else "not fetched") + ")",
                      style="bold", highlight=False)
        for label, text in (("holds", dataset.description), ("size", dataset.size),
                            ("licence", dataset.licence), ("cite", dataset.citation),
                            ("checksums from", dataset.published)):
            console.print(f"  {label}: {text}", highlight=False)


@data_app.command("fetch")
def data_fetch(
    name: Annotated[str, typer.Argument(help="The dataset, as `clustergrid data list` "
                                        "names it, e.g. frdeep.")],
    to: DataFolderOption = None,
) -> None:
    """Download a public dataset into the data folder, checking its checksums.

    Prints its licence and citation, where it is, and the dataset entry that reads it,
    for an experiment file. A file already there with its checksum is not downloaded
    again: a fetched dataset works offline. A download whose checksum differs is
    deleted and refused.

    Examples:

    clustergrid data fetch frdeep
    clustergrid data fetch galaxy10-decals --to /data/public
    """
    import shlex

    import yaml

    from clustergrid.public_data import fetch, find

    dataset = find(name)
    console.print(f"{dataset.title}: {dataset.description}.", highlight=False)
    console.print(f"Licence: {dataset.licence}.", highlight=False)
    console.print(f"Cite: {dataset.citation}.", highlight=False)
    if sys.stderr.isatty():
        console.print(f"Downloading {dataset.size} unless the data folder has it...",
                      highlight=False)
    fetched = fetch(name, to)
    if fetched.downloaded:
        console.print(f"Downloaded, checksum checked: {', '.join(fetched.downloaded)}",
                      highlight=False)
    if fetched.cached:
        console.print(f"Already in the data folder, checksum checked: "
                      f"{', '.join(fetched.cached)}", highlight=False)
    console.print(f"Data: {fetched.path}", highlight=False)
    entry = fetched.entry()
    console.print("The dataset entry, for an experiment file's datasets:", highlight=False)
    console.print(textwrap.indent(_entry_item(entry), "  "), highlight=False)
    snippet = yaml.safe_dump(entry, sort_keys=False, default_flow_style=True,
                             width=float("inf")).strip()
    console.print(f"Look at it first: clustergrid inspect {shlex.quote(snippet)}",
                  highlight=False)


def _entry_item(entry: dict) -> str:
    """``entry`` as an item of a YAML list: mappings as blocks, lists in brackets, as the
    manual writes dataset entries (``bands: [[g, r, i]]``)."""
    import yaml

    class BracketLists(yaml.SafeDumper):
        pass

    BracketLists.add_representer(list, lambda dumper, data: dumper.represent_sequence(
        "tag:yaml.org,2002:seq", data, flow_style=True))
    lines = yaml.dump(entry, Dumper=BracketLists, sort_keys=False, width=88).splitlines()
    return "\n".join([f"- {lines[0]}", *(f"  {line}" for line in lines[1:])])


@app.command()
def ui(
    tracking_uri: TrackingOption = None,
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 5000,
) -> None:
    """Open the MLflow UI on the local store (or --tracking-uri).

    Examples:

    clustergrid ui
    clustergrid ui --tracking-uri /data/clustergrid-runs --port 5001
    """
    from clustergrid.locations import resolve_uri

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
        # One mistake a line (an experiment file's are listed together), each a whole
        # `error:` line for whoever greps a batch job's log.
        for line in str(exc).splitlines() or [""]:
            errors.print(f"error: {line}", highlight=False)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        errors.print("interrupted: finished steps are cached; run again to resume.")
        raise SystemExit(130) from None
