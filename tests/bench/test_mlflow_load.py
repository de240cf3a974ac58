"""MLflow under load (bench/mlflow_load.py, small): several runs tracking at once through the project's
own tracker and uploader processes into the session's real MLflow server; every point read back."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))


def test_concurrent_runs_lose_no_metric(mlflow_server, tmp_path):
    from mlflow_load import METRICS, run_load

    result = run_load(mlflow_server.uri, tmp_path / "runs", writers=4, seconds=3, rate=10)
    assert result["writers_failed"] == 0
    assert result["runs_finished"] == 4
    assert result["points_logged"] >= 4 * 3 * 10 * len(METRICS) * 0.9  # the writers kept their rate
    assert result["points_found"] == result["points_logged"] == result["points_buffered"]
    assert result["points_wrong"] == 0
