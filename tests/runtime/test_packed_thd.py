"""Packed samples on the GPU stack's layout (thd), checked on the CPU as far as the CPU can check it.

- The thd `PackedSeqParams` built for a packed batch describe exactly its samples.
- The stage picks the layout, layer spec and Mamba mixer the stack supports (nemotron.common.stack).
- The thd path through real Megatron-Core models (GPT; hybrid Mamba/attention/MoE) gives every token
  the loss and gradients of the masked (sbhd) path. TE's varlen attention kernel needs CUDA, so one
  part is a stand-in: `VarlenReferenceAttention` below computes causal attention per `cu_seqlens`
  segment in plain PyTorch where TE's kernel would run. Everything around it is the real code: the
  batch flattening, Megatron's thd RoPE (restarting at each sample), the Mamba mixer's per-sample
  state, the loss reshape. tests/gpu/ runs the same comparison with TE itself where CUDA exists.
- An installed package that fails to import is one warning line naming the error and the slower path.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nemotron.common import stack as stacks
from nemotron.runtime import cpu_compat
from nemotron.runtime.data.sft import pack_samples
from nemotron.runtime.model.build import build_model
from nemotron.runtime.model.packed import SegmentAwareDotProductAttention, thd_batch, thd_packed_seq_params
from nemotron.runtime.model.stack_check import import_error
from nemotron.runtime.stages.sft import packed_forward, packed_layout
from runtime_support import megatron_world, run_config, tiny_data_dir  # noqa: F401 - fixtures

VOCAB, SEQ = 512, 64


class VarlenReferenceAttention(torch.nn.Module):
    """Stand-in for TE's varlen (thd, padding_causal) attention, which needs CUDA: causal softmax
    attention inside each `cu_seqlens` segment of q/k/v [tokens, heads, dim], in plain PyTorch."""

    def forward(self, query, key, value, attention_mask, attn_mask_type=None, attention_bias=None,
                packed_seq_params=None):  # fmt: skip
        assert packed_seq_params is not None and packed_seq_params.qkv_format == "thd"
        assert attention_mask is None  # thd keeps samples apart by cu_seqlens alone
        repeat = query.shape[1] // key.shape[1]
        key, value = key.repeat_interleave(repeat, dim=1), value.repeat_interleave(repeat, dim=1)
        cu = packed_seq_params.cu_seqlens_q.tolist()
        outs = []
        for start, end in zip(cu[:-1], cu[1:]):
            q, k, v = (t[start:end].transpose(0, 1) for t in (query, key, value))  # [heads, n, dim]
            scores = q @ k.transpose(1, 2) / q.shape[-1] ** 0.5
            causal = torch.ones(end - start, end - start, dtype=torch.bool).tril()
            outs.append((scores.masked_fill(~causal, float("-inf")).softmax(-1) @ v).transpose(0, 1))
        return torch.cat(outs).reshape(query.shape[0], -1)


def _batch(seed=0):
    """Two packed rows of samples (the second row's tail is padding, a segment of its own)."""
    rng = np.random.default_rng(seed)

    def sample(n):
        return rng.integers(1, VOCAB, n).astype(np.int64), (rng.random(n) < 0.6).astype(np.uint8)

    rows = [
        pack_samples([sample(20), sample(30), sample(15)], SEQ, pad=0),
        pack_samples([sample(41), sample(9)], SEQ, pad=0),
    ]
    return {k: torch.stack([torch.as_tensor(r[k]) for r in rows]) for k in rows[0]}


def _model(run_config, recipe):
    cfg = run_config(recipe, "checkpoint.pretrained=null", f"model.seq_length={SEQ}")
    torch.manual_seed(0)
    cpu_compat.seed_model_parallel(1234)
    model, _ = build_model(cfg, VOCAB)
    return model


def _with_varlen_attention(model):
    for module in model.modules():
        if isinstance(getattr(module, "core_attention", None), SegmentAwareDotProductAttention):
            module.core_attention = VarlenReferenceAttention()
    return model


def test_thd_params_describe_exactly_the_samples():
    segments = torch.tensor([[0, 0, 0, 1, 1, 2, 2, 2], [3, 3, 3, 3, 3, 4, 5, 5]])
    params = thd_packed_seq_params(segments)
    assert params.qkv_format == "thd"
    assert params.cu_seqlens_q.dtype == torch.int32  # TE asserts int32
    assert params.cu_seqlens_q.tolist() == [0, 3, 5, 8, 13, 14, 16]  # every sample, rows end to end
    assert params.cu_seqlens_kv.tolist() == params.cu_seqlens_q.tolist()
    assert params.max_seqlen_q == params.max_seqlen_kv == 5  # the longest sample, not the pack
    flat = thd_batch({"tokens": segments, "attention_mask": torch.ones(2, 1, 8, 8)})
    assert set(flat) == {"tokens"} and flat["tokens"].shape == (1, 16)


def test_a_row_that_is_one_sample_still_starts_a_sample_in_the_next_row():
    params = thd_packed_seq_params(torch.tensor([[7, 7, 7], [7, 7, 7]]))  # equal ids, separate rows
    assert params.cu_seqlens_q.tolist() == [0, 3, 6]


@pytest.mark.parametrize("recipe", ["gpt/sft", "nano3/sft"])
def test_the_thd_path_gives_every_token_its_masked_path_loss_and_gradients(megatron_world, run_config, recipe):
    model = _model(run_config, recipe)
    batch = _batch()
    _, masked = packed_forward(dict(batch), model, "sbhd")
    masked_grads = torch.autograd.grad((masked * batch["loss_mask"]).sum(), list(model.parameters()), allow_unused=True)
    _with_varlen_attention(model)
    _, thd = packed_forward(dict(batch), model, "thd")
    assert thd.shape == masked.shape == batch["tokens"].shape
    assert (thd - masked).abs().max() <= 1e-5  # every token, the padding segment's too
    thd_grads = torch.autograd.grad((thd * batch["loss_mask"]).sum(), list(model.parameters()), allow_unused=True)
    for a, b in zip(thd_grads, masked_grads):
        assert (a is None) == (b is None)
        if a is not None:
            assert (a - b).abs().max() <= 1e-5


def test_the_stage_picks_what_the_stack_supports(run_config):
    gpu_full, te_only, bare = (
        stacks.Stack(True, True, "x"),
        stacks.Stack(True, False, "x"),
        stacks.Stack(False, False, "x"),
    )
    gpt, nano3 = (
        run_config("gpt/sft", "checkpoint.pretrained=null"),
        run_config("nano3/sft", "checkpoint.pretrained=null"),
    )
    assert [stacks.packed_layout(gpt, s) for s in (gpu_full, te_only, bare)] == ["thd", "thd", "sbhd"]
    # the TE hybrid spec hard-wires mamba_ssm's mixer: without it, the local spec
    assert [stacks.packed_layout(nano3, s) for s in (gpu_full, te_only, bare)] == ["thd", "sbhd", "sbhd"]
    assert stacks.mamba_mixer(nano3, gpu_full) == "mamba_ssm"
    # packed samples on the local spec need the mixer that resets state inside a [seq, batch] row
    assert stacks.mamba_mixer(nano3, stacks.Stack(False, True, "x")) == "torch"
    local = run_config("nano3/sft", "checkpoint.pretrained=null", "model.transformer_impl=local")
    assert stacks.packed_layout(local, gpu_full) == "sbhd"
    assert packed_layout(gpt) == "sbhd"  # this CPU process


def test_an_installed_package_that_does_not_import_is_one_warning(tmp_path, monkeypatch, capsys):
    package = tmp_path / "nemotron_broken_kernels"
    package.mkdir()
    (package / "__init__.py").write_text("raise ImportError('libcudart.so.12: cannot open shared object file')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reason = import_error("nemotron_broken_kernels")
    assert reason == "ImportError: libcudart.so.12: cannot open shared object file"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning: nemotron_broken_kernels is installed but does not import")
    assert import_error("nemotron_not_installed_anywhere") == "not installed"
