"""What ``clustergrid run`` prints as it goes. Without a terminal (a batch job's log,
nohup): plain progress lines every few steps or seconds, and a last line however the run
ends. Failures: once per failed step, with the number of combinations it failed."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import cli, install_fake_distribution, write_experiment
from rich.console import Console

from clustergrid.errors import Interrupted
from clustergrid.progress import StepProgress

LINE = re.compile(r"^steps (\d+)/(\d+) \((\d+)%\): (\d+) cached, (\d+) failed, [\d.]+ s"
                  r"( \((finished|interrupted|stopped by an error)\))?$")


def preview(total: int):
    return SimpleNamespace(steps={"data": (1, 0), "encode": (total - 1, 0)})


def outcome(status: str = "computed"):
    return SimpleNamespace(status=status)


def plain() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=200), out


def test_without_a_terminal_lines_every_n_steps_and_a_final_summary():
    console, out = plain()
    statuses = ["cached", "cached", "failed", *["computed"] * 7]
    with StepProgress(console, every_steps=4, every_seconds=3600) as progress:
        progress.start(preview(10))
        for status in statuses:
            progress.advance(outcome(status))
    lines = out.getvalue().splitlines()
    assert [LINE.match(line).group(1, 2, 3, 4, 5, 7) for line in lines] == [
        ("4", "10", "40", "2", "1", None),
        ("8", "10", "80", "2", "1", None),
        ("10", "10", "100", "2", "1", "finished"),
    ]


def test_without_a_terminal_a_long_step_still_prints_lines():
    console, out = plain()
    with StepProgress(console, every_steps=100, every_seconds=0.2) as progress:
        progress.start(preview(10))
        progress.advance(outcome())
        time.sleep(1.0)  # one step running for a long time: no outcome arrives
        ticks = out.getvalue().splitlines()
    assert len(ticks) >= 2, ticks
    assert all(line.startswith("steps 1/10 (10%): 0 cached, 0 failed, ") for line in ticks)


@pytest.mark.parametrize("stop", [KeyboardInterrupt, Interrupted])
def test_the_summary_line_is_printed_when_a_run_is_interrupted(stop):
    console, out = plain()
    with pytest.raises(stop), StepProgress(console, every_seconds=3600) as progress:
        progress.start(preview(10))
        for _ in range(3):
            progress.advance(outcome())
        raise stop("stop")
    last = out.getvalue().splitlines()[-1]
    assert LINE.match(last).group(1, 2, 7) == ("3", "10", "interrupted"), last


def test_a_run_stopped_before_its_plan_prints_no_progress():
    console, out = plain()
    with pytest.raises(ValueError), StepProgress(console):
        raise ValueError("the store cannot be opened")
    assert out.getvalue() == ""


def test_on_a_terminal_the_bar_prints_no_plain_lines():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with StepProgress(console, every_steps=1) as progress:
        progress.start(preview(4))
        for _ in range(4):
            progress.advance(outcome())
    assert not LINE.search(out.getvalue())
    assert "4/4" in out.getvalue()


TINY = """\
name: piped
datasets:
  - plugin: digits
    n_samples: 120
encoders:
  - plugin: {encoder}
clusterers:
  - plugin: kmeans
    n_clusters: [2, 3, 4]
    n_init: 1
metrics: [silhouette]
map: null
verdict: null
executor: {{workers: 1}}
"""


def test_run_with_output_to_a_pipe_prints_progress_lines(workdir):
    path = write_experiment(workdir, TINY.format(encoder="pixels"))
    result = cli("run", str(path), cwd=workdir)
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stdout.splitlines() if line.startswith("steps ")]
    # 1 data, 1 encode, 1 reduce, 3 cluster and 3 score steps; 1 describe, 3 cards.
    assert len(progress) >= 2, result.stdout
    assert all(LINE.match(line) for line in progress), progress
    assert progress[-1].startswith("steps 13/13 (100%): 0 cached, 0 failed, ")
    assert progress[-1].endswith(" (finished)")
    assert "\x1b[" not in result.stdout  # no bar drawing into the log


SLOW_ENCODER = """
import time

import numpy as np
from clustergrid import Encoder, hookimpl


class Slow(Encoder):
    '''Takes a minute: long enough to be stopped while it runs.'''

    name = "slow"

    def transform(self, images):
        time.sleep(60)
        return np.asarray(images).reshape(len(images), -1)


@hookimpl
def register_encoders(register):
    register(Slow)
"""


def test_a_stopped_run_ends_its_log_with_how_far_it_got(workdir, fake_site):
    install_fake_distribution(fake_site, "slow-encoder", "fake_slow", SLOW_ENCODER)
    path = write_experiment(workdir, TINY.format(encoder="slow"))
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "clustergrid"), "run", str(path)], cwd=workdir,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        for line in process.stdout:  # the data step is done; the encoder sleeps
            if line.startswith("steps 1/"):
                total = LINE.match(line.strip()).group(2)
                break
        process.send_signal(signal.SIGTERM)  # a batch system's stop
        rest, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, err
    last = [line for line in rest.splitlines() if line.startswith("steps ")][-1]
    assert LINE.match(last).group(1, 2, 7) == ("1", total, "interrupted"), rest
    assert err.startswith("interrupted: 0 of 3 combinations were logged"), err


#: TINY over a stack that is found (its fingerprint is taken) but cannot be read:
#: its data step fails, and with it 2 encoders x 3 clusterers
BROKEN = (TINY.format(encoder="pixels\n    downsample: [1, 2]")
          .replace("plugin: digits\n    n_samples: 120", "plugin: npy\n    path: stack.npy"))


def test_a_dataset_that_fails_is_reported_once_with_its_combinations(workdir):
    (workdir / "stack.npy").write_text("not an array\n")
    path = write_experiment(workdir, BROKEN)
    result = cli("run", str(path), cwd=workdir)
    assert result.returncode == 1, result.stderr
    failed = [line for line in result.stderr.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1, result.stderr
    assert failed[0].startswith("FAILED data step: dataset 'npy[path=stack.npy]' failed: ")
    assert failed[0].endswith(" (6 combinations)")
    assert "Combinations: 0 finished, 6 failed" in result.stdout
    report = (workdir / "clustergrid-runs" / "reports" / "piped.html").read_text()
    failures = report[report.index("<h3>Failures</h3>"):]
    assert failures.count("<tr class='failed'>") == 1
    assert "6 combinations: npy[path=stack.npy] / pixels[downsample=1]" in failures


def test_a_step_failing_one_combination_names_the_combination():
    from clustergrid.cli import _failure_lines

    def step(stage, error):
        return SimpleNamespace(stage=stage, error=error, status="failed")

    failed = [("a / pixels / none / kmeans", "clusterer 'kmeans' failed: boom"),
              ("b / pixels / none / kmeans", "dataset 'b' failed: gone"),
              ("b / pixels / none / gmm", "dataset 'b' failed: gone"),
              ("c / pixels / none / kmeans", "logged by no step")]
    assert _failure_lines(failed, [step("cluster", "clusterer 'kmeans' failed: boom"),
                                   step("data", "dataset 'b' failed: gone")]) == [
        "FAILED a / pixels / none / kmeans: clusterer 'kmeans' failed: boom",
        "FAILED data step: dataset 'b' failed: gone (2 combinations)",
        "FAILED c / pixels / none / kmeans: logged by no step",
    ]
