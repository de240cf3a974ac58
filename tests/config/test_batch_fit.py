"""A recipe's default batch sizes fit the data-parallel ranks a cluster option gives; a batch size the
user chose is never changed (validation refuses a misfit instead)."""

from __future__ import annotations

from nemotron.config.batch_fit import fit_batch_to_ranks
from nemotron.config.validate import problems


def test_default_batch_is_raised_to_fit_eight_data_parallel_ranks(compose):
    cfg = compose(["+recipe=gpt/pretrain", "cluster=dgx"])
    note = fit_batch_to_ranks(cfg)
    assert cfg.train.global_batch_size == 32 and cfg.train.micro_batch_size == 4
    assert note.startswith("note: train.global_batch_size=8 (the recipe's default) raised to 32")
    assert problems(cfg) == []


def test_local_default_batch_is_left_as_the_recipe_has_it(compose):
    cfg = compose(["+recipe=gpt/pretrain"])
    assert fit_batch_to_ranks(cfg) is None and cfg.train.global_batch_size == 8


def test_a_batch_size_on_the_command_line_is_never_changed(compose):
    for chosen in ("train.global_batch_size=8", "train.micro_batch_size=4"):
        cfg = compose(["+recipe=gpt/pretrain", "cluster=dgx", chosen])
        assert fit_batch_to_ranks(cfg) is None and cfg.train.global_batch_size == 8
        assert any("must be a multiple of train.micro_batch_size=4 x data parallel size 8" in p for p in problems(cfg))
