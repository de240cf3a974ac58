"""`python -m nemotron.tracking compare-evals`: eval runs side by side in one table (a row per task and
metric, a column per run with the checkpoint it evaluated) and one bar figure, opened and checked."""

from __future__ import annotations

import json

from picture_support import shown

from nemotron.tracking.cli import main


def _eval_run(root, name, checkpoint, exact, acc):
    run = root / name
    run.mkdir(parents=True)
    results = {
        "results": {
            "nemotron_arithmetic": {"alias": "nemotron_arithmetic", "exact_match,strip": exact,
                                    "exact_match_stderr,strip": 0.05},
            "nemotron_topic_choice": {"acc,none": acc, "acc_stderr,none": 0.04, "acc_norm,none": acc / 2},
        }
    }  # fmt: skip
    (run / "eval_results.json").write_text(json.dumps(results))
    (run / "config.yaml").write_text(f"checkpoint:\n  pretrained: {checkpoint}\n")
    return run


def test_compare_evals_prints_one_table_and_draws_a_bar_per_run(tmp_path, capsys):
    sft = _eval_run(tmp_path, "eval-sft", "/ckpt/sft/checkpoints", 0.25, 0.5)
    rl = _eval_run(tmp_path, "eval-rl", "/ckpt/rl/checkpoints", 0.75, 0.6)
    png = tmp_path / "cmp.png"
    assert main(["compare-evals", str(sft), str(rl / "eval_results.json"), "--out", str(png)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["task", "/", "metric", "eval-sft", "eval-rl"]
    assert lines[1].split() == ["checkpoint", "/ckpt/sft/checkpoints", "/ckpt/rl/checkpoints"]
    rows = {" ".join(line.split()[:2]): line.split()[2:] for line in lines[3:-1]}
    assert rows == {
        "nemotron_arithmetic exact_match_strip": ["0.2500", "0.7500"],
        "nemotron_topic_choice acc": ["0.5000", "0.6000"],
        "nemotron_topic_choice acc_norm": ["0.2500", "0.3000"],
    }  # stderr rows left out
    assert lines[-1] == f"plot: {png}"
    panels = shown(png)
    assert sorted(panels) == sorted(rows)
    assert all(bars == [("eval-sft", 1), ("eval-rl", 1)] for bars in panels.values())


def test_compare_evals_refuses_a_directory_that_is_no_eval_run(tmp_path, capsys):
    assert main(["compare-evals", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path}: no eval_results.json (not an eval run directory)"
