"""Flags and overrides may be mixed on the command line."""

from nemotron.cli.argv import flags_first, quiet_dry_run


def test_multirun_flag_after_overrides_moves_first():
    argv = ["+recipe=x", "model.num_layers=8", "-m", "optim.lr=1e-4,3e-4"]
    assert flags_first(argv) == ["-m", "+recipe=x", "model.num_layers=8", "optim.lr=1e-4,3e-4"]


def test_flag_values_stay_with_their_flag():
    argv = ["a=1", "--cfg", "job", "--info", "searchpath", "b=2", "--resolve", "-cn", "other"]
    assert flags_first(argv) == ["--cfg", "job", "--info", "searchpath", "--resolve", "-cn", "other", "a=1", "b=2"]


def test_info_without_topic_leaves_next_override_alone():
    assert flags_first(["--info", "a=1"]) == ["--info", "a=1"]


def test_a_dry_run_asks_hydra_for_no_records_and_no_log_unless_the_line_says_otherwise():
    quiet = quiet_dry_run(["+recipe=gpt/pretrain", "dry_run=true"])
    assert quiet[2:] == ["hydra.output_subdir=null", "hydra/job_logging=none", "hydra/hydra_logging=none"]
    own = quiet_dry_run(["dry_run=True", "hydra/job_logging=default"])
    assert "hydra/job_logging=default" in own and "hydra/job_logging=none" not in own
    for line in (["+recipe=gpt/pretrain"], ["dry_run=false"], ["-m", "dry_run=true", "optim.lr=1,2"]):
        assert quiet_dry_run(line) == line  # real runs and sweeps keep Hydra's records


def test_recipe_without_plus_is_written_as_an_append():
    from nemotron.cli.argv import recipe_as_append

    assert recipe_as_append(["recipe=nano3/pretrain", "+recipe=x", "recipe.name=y", "train.steps=2"]) == [
        "+recipe=nano3/pretrain",
        "+recipe=x",
        "recipe.name=y",
        "train.steps=2",
    ]
