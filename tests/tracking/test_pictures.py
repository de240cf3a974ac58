"""The run's picture (`<run_dir>/loss.png`) and the figure across runs, without training: the figures'
lines, the PNG read back (its listed series and their pixels), each tracker kind drawing it on close,
and a failure to draw being one warning line. The pictures of real runs are checked where those runs
are (test_mlflow_run, test_sweep, runtime/test_dpo_train, runtime/test_grpo)."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf
from picture_support import LEGEND_PIXELS, colour_pixels, shown

from nemotron.tracking import open_tracker, plots

STEPS = 8


def _records(stage: str = ""):
    rows = []
    for step in range(1, STEPS + 1):
        row = {"step": step, "time": 1.0, "loss": 6.0 - step * 0.3, "lr": 1e-3 * step / STEPS, "grad_norm": 1.0}
        if stage == "dpo":
            row.update({"rewards/accuracies": 0.5 + step / 40, "rewards/margins": step / 5,
                        "rewards/chosen": 0.1 * step, "rewards/rejected": -0.1 * step})
        if stage == "rl":
            row.update({"reward_mean": step / 10, "reward/numeric_answer": step / 20, "kl": 0.01})
        rows.append(row)
    return rows + [{"step": 4, "val_loss": 5.0}, {"step": 8, "val_loss": 4.0}, {"status": "FINISHED", "time": 2.0}]


def _lines(fig):
    return {ax.get_ylabel(): {line.get_label(): list(line.get_xdata()) for line in ax.get_lines()} for ax in fig.axes}


def test_run_figure_has_loss_val_loss_lr_and_the_stage_panels():
    fig = plots.run_figure(plots.series_of(_records("dpo")), "gpt/dpo / run")
    lines = _lines(fig)
    assert list(lines) == ["loss", "learning rate", "preference accuracy (DPO)", "reward margin (DPO)"]
    assert lines["loss"] == {"loss": list(range(1, STEPS + 1)), "val_loss": [4, 8]}
    assert list(lines["reward margin (DPO)"]) == ["rewards/margins", "rewards/chosen", "rewards/rejected"]
    rl = _lines(plots.run_figure(plots.series_of(_records("rl")), "gpt/rl / run"))
    assert list(rl["reward (GRPO)"]) == ["reward_mean", "reward/numeric_answer"]
    assert "grad_norm" not in str(rl) and "kl" not in rl


def test_a_resumed_step_keeps_its_last_value_and_nan_is_left_out():
    series = plots.series_of([{"step": 1, "loss": 3.0}, {"step": 2, "loss": float("nan")}, {"step": 1, "loss": 2.0}])
    assert series == {"loss": [(1, 2.0)]}
    assert plots.run_figure({"grad_norm": [(1, 1.0)]}, "t") is None  # nothing a panel draws


def test_the_png_lists_its_series_and_each_is_drawn(tmp_path):
    png = plots.write_run_picture(plots.series_of(_records("rl")), tmp_path / "loss.png", "gpt/rl / run")
    assert shown(png) == {"loss": [("loss", STEPS), ("val_loss", 2)], "learning rate": [("lr", STEPS)],
                          "reward (GRPO)": [("reward_mean", STEPS), ("reward/numeric_answer", STEPS)]}
    from matplotlib.image import imread

    unused = plots.PALETTE[5]  # five series: the sixth colour is not in the picture
    assert colour_pixels(imread(png), unused) == 0 < LEGEND_PIXELS
    assert not list(tmp_path.glob(".*"))  # the temporary file was renamed


def test_compare_figure_has_one_colour_per_run_across_the_panels(tmp_path):
    runs = {"0: optim.lr=0.001": plots.series_of(_records()), "1: optim.lr=0.003": plots.series_of(_records("dpo"))}
    fig = plots.compare_figure(runs, "sweep", extra=("grad_norm",))
    lines = _lines(fig)
    assert list(lines) == ["loss", "learning rate", "preference accuracy (DPO)", "reward margin (DPO)", "grad_norm"]
    assert list(lines["loss"]) == ["0: optim.lr=0.001", "0: optim.lr=0.001: val_loss",
                                   "1: optim.lr=0.003", "1: optim.lr=0.003: val_loss"]
    assert list(lines["preference accuracy (DPO)"]) == ["1: optim.lr=0.003"]
    colours = {line.get_label(): line.get_color() for line in fig.axes[1].get_lines()}
    assert len(set(colours.values())) == 2
    panels = shown(plots.save(fig, tmp_path / "compare.png"))
    assert [label for label, _ in panels["learning rate"]] == list(runs)


def _cfg(tmp_path, kind: str):
    return OmegaConf.create({"run_dir": str(tmp_path / "run"), "recipe": {"name": "gpt/dpo"},
                             "tracker": {"kind": kind, "path": None}})


@pytest.mark.parametrize("kind", ["none", "jsonl"])
def test_every_tracker_kind_draws_the_run_picture_on_close(tmp_path, kind):
    tracker = open_tracker(_cfg(tmp_path, kind))
    for row in _records("dpo")[:-1]:
        tracker.log(row.pop("step"), {k: v for k, v in row.items() if k != "time"})
    tracker.close("FINISHED")
    panels = shown(tmp_path / "run" / plots.PICTURE)
    assert panels["loss"] == [("loss", STEPS), ("val_loss", 2)] and panels["learning rate"] == [("lr", STEPS)]
    assert panels["preference accuracy (DPO)"] == [("rewards/accuracies", STEPS)]
    if kind == "jsonl":
        assert json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])["status"] == "FINISHED"


def test_a_failure_to_draw_is_one_warning_line_not_a_failed_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(plots, "save", lambda fig, out: (_ for _ in ()).throw(OSError("disk full")))
    tracker = open_tracker(_cfg(tmp_path, "none"))
    tracker.log(1, {"loss": 2.0, "lr": 1e-3})
    tracker.close("FINISHED")
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"warning: could not draw {tmp_path / 'run' / 'loss.png'}: OSError: disk full"]
    assert not (tmp_path / "run" / "loss.png").exists()


def test_a_run_that_logged_nothing_draws_nothing(tmp_path, capsys):
    open_tracker(_cfg(tmp_path, "none")).close("FAILED")
    assert not (tmp_path / "run").exists() and capsys.readouterr().err == ""
