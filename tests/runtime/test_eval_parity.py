"""The eval stage's LM against lm-eval's own `hf` backend on the same weights, exported with export-hf:
equal per-request loglikelihoods (fp32, 1e-4), equal task scores, equal greedy generations. Also: the
export ships the run's tokenizer, so the exported directory loads with AutoTokenizer alone."""

from __future__ import annotations

import re

import pytest
from omegaconf import OmegaConf
from runtime_support import process_group, run_config, tiny_data_dir  # noqa: F401

TASKS = ["nemotron_arithmetic", "nemotron_topic_choice", "nemotron_tiny_ppl"]


@pytest.fixture
def trained(run_config, tmp_path):  # noqa: F811
    """A 2-step gpt_tiny pretraining run with one checkpoint and its config.yaml (as the launcher writes)."""
    from nemotron.runtime.stages.registry import stage_runner

    cfg = run_config("gpt/pretrain", "train.steps=2", "train.eval_interval=0", "checkpoint.save_interval=2")
    stage_runner("pretrain")(cfg)
    OmegaConf.save(cfg, f"{cfg.run_dir}/config.yaml")
    return cfg


def _samples(results, task):
    return sorted(results["samples"][task], key=lambda s: s["doc_id"])


def _logprob(resp):
    """A response's log-probability: a float (rolling) or the first of (logprob, is_greedy)."""
    return resp if isinstance(resp, float) else resp[0]


def _evaluate(lm, manager, seed=1234):
    from lm_eval import simple_evaluate

    return simple_evaluate(
        model=lm,
        tasks=TASKS,
        limit=4,
        task_manager=manager,
        log_samples=True,
        bootstrap_iters=0,
        random_seed=seed,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
    )


def test_our_lm_matches_lm_eval_hf_backend_on_the_exported_model(trained, run_config, tmp_path, capsys):  # noqa: F811
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoTokenizer

    from nemotron.hf.exporter import export_hf
    from nemotron.runtime.data import rl as rl_data
    from nemotron.runtime.eval import harness, stage, tasks
    from nemotron.runtime.train import distributed

    ckpt = f"{trained.run_dir}/checkpoints"
    record = export_hf(ckpt, str(tmp_path / "hf"), registry=str(tmp_path / "artifacts.json"))
    assert record["tokenizer_files"] == ["tokenizer.json", "tokenizer_config.json"]
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    assert tok.eos_token == "<|endoftext|>"

    cfg = run_config("gpt/eval", f"checkpoint.pretrained={ckpt}", "eval.batch_size=3")
    distributed.init(cfg)
    try:
        tokenizer = rl_data.rl_tokenizer(cfg)
        render, template = stage.chat_prompt(cfg, tokenizer)
        manager = harness.task_manager(tasks.prepare_tasks(cfg, render, template), TASKS)
        assert set(TASKS) <= set(manager.all_tasks) and "hellaswag" not in manager.all_tasks  # local index only
        ours_lm, source = stage.build_lm(cfg, tokenizer)
        assert source is not None and source.step == 2
        capsys.readouterr()
        ours = _evaluate(ours_lm, manager)
        shown = re.findall(r"^eval (?:loglikelihood|generation): ([\d,]+) requests in", capsys.readouterr().err, re.M)
        assert len(shown) >= 2 and sum(int(n.replace(",", "")) for n in shown) == ours_lm.requests_scored
    finally:
        distributed.teardown()
    try:
        ref = _evaluate(HFLM(pretrained=str(tmp_path / "hf"), batch_size=1, device="cpu"), manager)
    finally:  # lm-eval's hf backend (through accelerate) leaves a process group: later tests start clean
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()

    for task in TASKS:
        for mine, theirs in zip(_samples(ours, task), _samples(ref, task), strict=True):
            for a, b in zip(mine["resps"], theirs["resps"], strict=True):
                if isinstance(a[0], str):
                    assert a[0] == b[0], (task, a, b)
                else:
                    assert abs(_logprob(a[0]) - _logprob(b[0])) <= 1e-4, (task, a, b)
        assert ours["results"][task] == ref["results"][task]
