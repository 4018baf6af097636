"""The benchmarks still run against today's schema and API (at a tiny scale; their timing goals are theirs).

A benchmark that writes rows straight into the tables broke silently once when a migration
added a column; this catches that in ``make test`` instead of on the next measuring day.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_dora_bench_runs_and_checks_its_figures_at_a_tiny_scale(tmp_path: Path) -> None:
    bench = ROOT / "benchmarks" / "dora_bench.py"
    result = subprocess.run(
        [sys.executable, str(bench), "--scale", "0.002", "--db", str(tmp_path / "d.db")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    # Its exit code also holds its timing goals, which a tiny scale on a busy machine need not meet.
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    output = result.stdout
    assert "levels match: True" in output and "present in every report: True" in output, output[-3000:]
    assert "baseline vs exact deployments" in output and "(differs)" not in output, output[-3000:]
