"""The drift benchmark's quick run in-process: same decisions as the baseline, and its report lines."""

from __future__ import annotations

import pytest

from benchmarks import bench_drift


def test_quick_drift_benchmark_agrees_with_the_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_drift.main(["--quick", "--no-evidently"]) == 0
    out = capsys.readouterr().out
    assert "same decision as baseline: 20/20 columns" in out
    assert "aisec peak memory growth at   100,000 rows" in out
    assert "evidently" not in out  # its side environment is neither built nor run
