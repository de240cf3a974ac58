"""Flags and overrides may be mixed on the command line."""

from nemotron.argv import flags_first


def test_multirun_flag_after_overrides_moves_first():
    argv = ["+recipe=x", "model.num_layers=8", "-m", "optim.lr=1e-4,3e-4"]
    assert flags_first(argv) == ["-m", "+recipe=x", "model.num_layers=8", "optim.lr=1e-4,3e-4"]


def test_flag_values_stay_with_their_flag():
    argv = ["a=1", "--cfg", "job", "--info", "searchpath", "b=2", "--resolve", "-cn", "other"]
    assert flags_first(argv) == ["--cfg", "job", "--info", "searchpath", "--resolve", "-cn", "other", "a=1", "b=2"]


def test_info_without_topic_leaves_next_override_alone():
    assert flags_first(["--info", "a=1"]) == ["--info", "a=1"]
