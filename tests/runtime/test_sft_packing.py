"""Packed SFT batches on real Megatron-Core models (CPU, gloo, world size 1): every sample of a packed
row has the loss and gradients it has alone (GPT, and the hybrid Mamba/attention/MoE model), and
only labels inside the loss mask move the loss.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nemotron.runtime import cpu_compat


from nemotron.runtime.train import step as train_step_module
from nemotron.runtime.model.packed import packed_seq_params
from nemotron.runtime.model.build import build_model
from nemotron.runtime.data.sft import block_causal_mask, pack_samples
from runtime_support import megatron_world, run_config, tiny_data_dir  # noqa: F401 - fixtures

VOCAB, SEQ = 512, 128


def _samples(seed=0, lengths=(21, 40, 33)):
    rng = np.random.default_rng(seed)
    out = []
    for n in lengths:
        mask = (rng.random(n) < 0.6).astype(np.uint8)
        out.append((rng.integers(1, VOCAB, n).astype(np.int64), mask))
    return out


def _model(run_config, recipe, *overrides):
    cfg = run_config(recipe, "checkpoint.pretrained=null", *overrides)
    torch.manual_seed(0)
    cpu_compat.seed_model_parallel(1234)
    model, _ = build_model(cfg, VOCAB)
    return model


def _packed_losses(model, samples):
    row = pack_samples(samples, SEQ, pad=0)
    batch = {k: v[None] for k, v in row.items()}
    losses = model(
        batch["tokens"],
        batch["position_ids"],
        batch["attention_mask"],
        labels=batch["labels"],
        packed_seq_params=packed_seq_params(batch["segment_ids"]),
    )
    return losses[0], row


def _alone_losses(model, ids):
    tokens = torch.as_tensor(ids[:-1])[None]
    positions = torch.arange(len(ids) - 1)[None]
    causal = block_causal_mask(torch.zeros(len(ids) - 1, dtype=torch.long))[None]  # one sample
    return model(tokens, positions, causal, labels=torch.as_tensor(ids[1:])[None])[0]


def _grads(model, loss):
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.autograd.grad(loss, params, allow_unused=True)


@pytest.mark.parametrize("recipe", ["gpt/sft", "nano3/sft"])
def test_packed_samples_have_the_losses_and_gradients_they_have_alone(megatron_world, run_config, recipe):
    model = _model(run_config, recipe)
    samples = _samples()
    with torch.no_grad():
        packed, row = _packed_losses(model, samples)
    start = 0
    for k, (ids, mask) in enumerate(samples):
        n = len(ids) - 1
        alone = _alone_losses(model, ids)
        assert torch.allclose(packed[start : start + n], alone.detach(), atol=1e-5, rtol=0), k
        weights = torch.as_tensor(mask[1:], dtype=torch.float32)
        by_itself = _grads(model, (alone * weights).sum())
        fresh, _ = _packed_losses(model, samples)  # Megatron's cross entropy backprops once
        in_packed = _grads(model, (fresh[start : start + n] * weights).sum())
        for a, b in zip(in_packed, by_itself):
            if a is None or b is None:
                assert a is None and b is None
                continue
            # fp32 round-off, relative to the gradient's size (nano3's routed weights are scaled by 2.5);
            # a token leaking across samples moves gradients by far more
            assert (a - b).abs().max() <= 1e-5 * max(1.0, b.abs().max().item()), k
        start += n
    assert row["position_ids"][len(samples[0][0]) - 1] == 0  # the second sample restarts at 0


def test_neighbour_changes_leave_a_sample_alone(megatron_world, run_config):
    model = _model(run_config, "nano3/sft")
    samples = _samples()
    base, _ = _packed_losses(model, samples)
    changed = [samples[0], (samples[1][0][::-1].copy(), samples[1][1]), samples[2]]
    other, _ = _packed_losses(model, changed)
    n0 = len(samples[0][0]) - 1
    n1 = len(samples[1][0]) - 1
    assert torch.allclose(base[:n0], other[:n0], atol=1e-6)  # before: untouched
    assert torch.allclose(base[n0 + n1 :], other[n0 + n1 :], atol=1e-5)  # after: no state leaks in
    assert not torch.allclose(base[n0 : n0 + n1], other[n0 : n0 + n1], atol=1e-3)


def test_only_labels_inside_the_loss_mask_move_the_loss(megatron_world, run_config):
    model = _model(run_config, "gpt/sft")
    row = pack_samples(_samples(), SEQ, pad=0)
    batch = {k: v[None] for k, v in row.items()}

    def masked_loss(labels):
        with torch.no_grad():
            out = model(batch["tokens"], batch["position_ids"], batch["attention_mask"], labels=labels)
        total, count, _ = train_step_module.loss_func(batch["loss_mask"], out)
        return float(total / count)

    base = masked_loss(batch["labels"])
    outside = batch["labels"].clone()
    outside[batch["loss_mask"] == 0] = 7
    assert masked_loss(outside) == base
    inside = batch["labels"].clone()
    first = int(torch.nonzero(batch["loss_mask"][0])[0])
    inside[0, first] = (inside[0, first] + 1) % VOCAB
    assert masked_loss(inside) != base
