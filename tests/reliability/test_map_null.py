"""``map: null`` (no 2-D maps) through run, report and results, as a user runs them."""

from __future__ import annotations

import json
import subprocess

import harness


def clustergrid(*args, cwd):
    return subprocess.run([*harness.command(), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=harness.TIMEOUT)


def test_map_null_runs_reports_and_lists_results(tmp_path):
    path = harness.write_tiny(tmp_path)
    assert "map: null" in path.read_text()
    ran = harness.run(path, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "map" not in [line.split()[0] for line in ran.stdout.splitlines() if line.strip()]
    html = (tmp_path / "reports" / "tiny.html").read_text()
    assert "combinations finished" in html
    report = clustergrid("report", "tiny", "--format", "markdown", "-o", "r.md", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "8 combinations finished, 0 failed." in (tmp_path / "r.md").read_text()
    results = clustergrid("results", "tiny", "--format", "json", cwd=tmp_path)
    assert results.returncode == 0, results.stderr
    records = json.loads(results.stdout)
    assert len(records) == harness.COMBINATIONS
    assert all("step.map" not in record for record in records)
