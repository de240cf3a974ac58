"""Tests for nemotron.runtime.model.mamba2, the pure-PyTorch Mamba-2 mixer used without mamba_ssm."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nemotron.runtime import cpu_compat
from nemotron.runtime.model.mamba2 import (
    GatedRMSNorm,
    MambaMixerSubmodules,
    TorchMamba2Mixer,
    ssd_chunked,
    ssd_naive,
)

# (batch, seq, heads, head_dim, groups, state, chunk)
SCAN_SHAPES = [
    (2, 100, 4, 8, 2, 16, 16),  # seq not a multiple of the chunk, groups < heads
    (1, 64, 8, 4, 1, 8, 64),  # one chunk exactly, one group for all heads
    (2, 37, 6, 5, 3, 4, 8),  # odd sizes everywhere
    (1, 130, 4, 16, 4, 32, 64),  # groups == heads, a short tail chunk
]


def _scan_inputs(b, l, h, p, g, n, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype)

    dt = F.softplus(randn(b, l, h) - 1.0)
    A = -(torch.rand(h, generator=gen, dtype=dtype) * 4 + 0.5)
    return randn(b, l, h, p), dt, A, randn(b, l, g, n), randn(b, l, g, n), randn(h)


def _rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("b,l,h,p,g,n,chunk", SCAN_SHAPES)
def test_chunked_scan_matches_sequential_recurrence(b, l, h, p, g, n, chunk):
    x, dt, A, B, C, D = _scan_inputs(b, l, h, p, g, n)
    for skip in (None, D, D[:, None].expand(h, p)):  # no D, D per head, D per channel
        got = ssd_chunked(x, dt, A, B, C, chunk, D=skip)
        assert _rel_err(got, ssd_naive(x, dt, A, B, C, skip)) < 1e-5


def test_chunked_scan_gradients_match_sequential_recurrence():
    inputs = [t.requires_grad_() for t in _scan_inputs(2, 45, 4, 8, 2, 16)]
    grads = []
    for scan in (lambda *a: ssd_chunked(*a[:5], 16, D=a[5]), ssd_naive):
        out = scan(*inputs)
        weight = torch.linspace(-1, 1, out.numel()).view_as(out)
        grads.append(torch.autograd.grad((out * weight).sum(), inputs))
    for name, got, want in zip(("x", "dt", "A", "B", "C", "D"), *grads):
        assert torch.isfinite(got).all(), name
        assert _rel_err(got, want) < 1e-4, name


def test_chunked_scan_passes_float64_gradcheck():
    inputs = tuple(t.requires_grad_() for t in _scan_inputs(1, 11, 2, 3, 1, 4, torch.float64))
    assert torch.autograd.gradcheck(lambda *a: ssd_chunked(*a[:5], 4, D=a[5]), inputs)


SEGMENTS = [(0, 5, 16, 17, 40, 41, 63), (0, 1, 2, 30, 32)]  # per row: where samples start (chunk 16)


def _starts(b, l, rows=SEGMENTS):
    starts = torch.zeros(b, l, dtype=torch.bool)
    for row, offsets in zip(range(b), rows):
        starts[row, list(offsets)] = True
    return starts


def _alone(scan, starts, *tensors):
    """`scan` run on every segment of every row on its own, laid back in place."""
    out = torch.zeros_like(tensors[0])
    for row in range(starts.shape[0]):
        bounds = [*starts[row].nonzero().squeeze(1).tolist(), starts.shape[1]]
        for lo, hi in zip(bounds, bounds[1:]):
            out[row, lo:hi] = scan(*(t[row : row + 1, lo:hi] for t in tensors))[0]
    return out


def test_segment_aware_scan_is_every_sample_scanned_alone():
    x, dt, A, B, C, D = (t.requires_grad_() for t in _scan_inputs(2, 64, 4, 8, 2, 16, torch.float64))
    starts = _starts(2, 64)  # starts mid-chunk, on a chunk edge, in adjacent tokens, at the last token
    got = ssd_chunked(x, dt, A, B, C, 16, D=D, starts=starts)
    want = _alone(lambda x, dt, B, C: ssd_naive(x, dt, A, B, C, D), starts, x, dt, B, C)
    assert _rel_err(got, want) < 1e-10
    weight = torch.linspace(-1, 1, got.numel(), dtype=got.dtype).view_as(got)
    grads = [torch.autograd.grad((out * weight).sum(), (x, dt, A, B, C, D)) for out in (got, want)]
    for name, g_got, g_want in zip(("x", "dt", "A", "B", "C", "D"), *grads):
        assert torch.isfinite(g_got).all() and _rel_err(g_got, g_want) < 1e-10, name
    unsegmented = ssd_chunked(x, dt, A, B, C, 16, D=D)
    assert _rel_err(unsegmented, want) > 1e-3  # the resets matter: without them the samples mix


def test_gated_rmsnorm_normalises_each_group_of_gated_input():
    norm = GatedRMSNorm(8, group_size=4)
    y, z = torch.randn(3, 8), torch.randn(3, 8)
    gated = (y * F.silu(z)).view(3, 2, 4)
    want = gated / gated.pow(2).mean(-1, keepdim=True).add(1e-5).sqrt()
    torch.testing.assert_close(norm(y, z), want.view(3, 8))


# ---------------------------------------------------------------- Megatron-backed tests


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def megatron_world():
    """World size 1 (gloo), TP=PP=1, CPU patches and RNG tracker; yields the process groups."""
    import torch.distributed as dist
    from megatron.core import parallel_state
    from megatron.core.process_groups_config import ProcessGroupCollection

    created = not dist.is_initialized()
    if created:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
        dist.init_process_group("gloo", rank=0, world_size=1)
    if not parallel_state.model_parallel_is_initialized():
        parallel_state.initialize_model_parallel(1, 1)
    cpu_compat.install()
    cpu_compat.seed_model_parallel(1234)
    yield ProcessGroupCollection.use_mpu_process_groups()
    if created:
        cpu_compat.destroy_model_parallel_groups()
        dist.destroy_process_group()


def _config(**overrides):
    from megatron.core.transformer.transformer_config import TransformerConfig

    kwargs = dict(
        num_layers=2, hidden_size=32, num_attention_heads=4, use_cpu_initialization=True,
        hidden_dropout=0.0, attention_dropout=0.0, normalization="RMSNorm",
        mamba_num_heads=4, mamba_head_dim=16, mamba_state_dim=8, mamba_num_groups=2,
    )
    return TransformerConfig(**{**kwargs, **overrides})


def _mixer(pg_collection, config=None, **kwargs):
    from megatron.core.tensor_parallel import ColumnParallelLinear, RowParallelLinear

    config = config or _config()
    submodules = MambaMixerSubmodules(in_proj=ColumnParallelLinear, out_proj=RowParallelLinear)
    return TorchMamba2Mixer(config, submodules, d_model=config.hidden_size, chunk_size=8,
                            layer_number=1, pg_collection=pg_collection, **kwargs)


def test_mixer_has_upstream_parameter_names_and_shapes(megatron_world):
    mixer = _mixer(megatron_world)
    d_inner, gn, heads = 64, 2 * 8, 4
    shapes = {k: tuple(v.shape) for k, v in mixer.state_dict().items() if v is not None}
    assert shapes == {
        "in_proj.weight": (2 * d_inner + 2 * gn + heads, 32),
        "conv1d.weight": (d_inner + 2 * gn, 1, 4),
        "conv1d.bias": (d_inner + 2 * gn,),
        "dt_bias": (heads,), "A_log": (heads,), "D": (heads,),
        "norm.weight": (d_inner,),
        "out_proj.weight": (32, d_inner),
    }
    assert mixer.A_log.dtype == mixer.D.dtype == torch.float32


def _reference_mix(mixer, zxBCdt):
    """MambaMixer's unfused path written out: module conv1d, sequential scan, gated group norm."""
    l, b, _ = zxBCdt.shape
    z, xBC, dt = zxBCdt.permute(1, 2, 0).split([64, 64 + 32, 4], dim=1)  # [b, channels, l]
    x, B, C = F.silu(mixer.conv1d(xBC)[..., :l]).transpose(1, 2).split([64, 16, 16], dim=-1)
    y = ssd_naive(x.reshape(b, l, 4, 16), F.softplus(dt.transpose(1, 2) + mixer.dt_bias),
                  -torch.exp(mixer.A_log), B.reshape(b, l, 2, 8), C.reshape(b, l, 2, 8), mixer.D)
    gated = (y.reshape(b, l, 2, 32) * F.silu(z.transpose(1, 2).reshape(b, l, 2, 32)))
    normed = gated * torch.rsqrt(gated.pow(2).mean(-1, keepdim=True) + 1e-5)
    return (normed.reshape(b, l, 64) * mixer.norm.weight).transpose(0, 1)


def test_mixer_matches_unfused_reference(megatron_world):
    mixer = _mixer(megatron_world)
    zxBCdt = torch.randn(21, 3, 64 * 2 + 32 + 4)
    torch.testing.assert_close(mixer.mix(zxBCdt), _reference_mix(mixer, zxBCdt),
                               rtol=1e-5, atol=1e-5)


def test_packed_mixer_gives_every_sample_what_it_gets_alone(megatron_world):
    from nemotron.runtime.model.packed import packed_seq_params

    mixer = _mixer(megatron_world)
    hidden = torch.randn(64, 2, 32, requires_grad=True)  # [seq, batch, hidden]
    segment_ids = torch.cumsum(_starts(2, 64).long(), dim=1)
    packed, _ = mixer(hidden, packed_seq_params=packed_seq_params(segment_ids))
    alone = _alone(lambda h: mixer(h.transpose(0, 1))[0].transpose(0, 1), _starts(2, 64), hidden.transpose(0, 1))
    torch.testing.assert_close(packed, alone.transpose(0, 1), rtol=1e-5, atol=1e-5)
    weight = torch.randn_like(packed)
    params = [hidden, *mixer.parameters()]
    grads = [torch.autograd.grad((out * weight).sum(), params) for out in (packed, alone.transpose(0, 1))]
    for g_packed, g_alone in zip(*grads):
        torch.testing.assert_close(g_packed, g_alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype,options", [
    (torch.float32, {}),
    (torch.float32, {"D_has_hdim": True, "rmsnorm": False}),
    (torch.bfloat16, {}),
])
def test_mixer_forward_returns_seq_batch_hidden_and_backprops(megatron_world, dtype, options):
    config = _config(params_dtype=dtype, bf16=dtype == torch.bfloat16)
    mixer = _mixer(megatron_world, config, **options)
    hidden = torch.randn(19, 2, 32, dtype=dtype, requires_grad=True)
    out, bias = mixer(hidden)
    assert out.shape == (19, 2, 32) and out.dtype == dtype and bias is None
    out.float().square().mean().backward()
    for name, param in [("input", hidden), *mixer.named_parameters()]:
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_cached_decoding_equals_the_full_forward(megatron_world):
    from nemotron.runtime.model.inference_compat import advance, static_context

    mixer = _mixer(megatron_world).eval()
    mixer.layer_number = 1
    hidden = torch.randn(11, 2, 32)
    with torch.no_grad():
        full, _ = mixer(hidden)
        context = static_context(2, 11)
        parts = [mixer(hidden[:5], inference_context=context)[0]]  # prefill, then one at a time
        for t in range(5, 11):
            advance(context, t)
            parts.append(mixer(hidden[t:t + 1], inference_context=context)[0])
    assert _rel_err(torch.cat(parts), full) < 1e-5


def test_sharded_state_dict_splits_tensors_like_upstream(megatron_world):
    from megatron.core.dist_checkpointing.mapping import (
        ShardedTensor, ShardedTensorFactory, apply_factories)

    mixer = _mixer(megatron_world)
    sharded = mixer.sharded_state_dict(prefix="mixer.")
    assert isinstance(sharded["mixer.in_proj.weight"], ShardedTensorFactory)
    apply_factories(sharded)
    tensors = [t for v in sharded.values() for t in (v if isinstance(v, list) else [v])]
    flat = {t.key: tuple(t.data.shape) for t in tensors if isinstance(t, ShardedTensor)}
    assert flat["mixer.in_proj.weight.z"] == flat["mixer.in_proj.weight.x"] == (64, 32)
    assert flat["mixer.in_proj.weight.B"] == (16, 32) and flat["mixer.in_proj.weight.dt"] == (4, 32)
    assert flat["mixer.conv1d.weight.x"] == (64, 1, 4) and flat["mixer.conv1d.bias.C"] == (16,)
    assert {"mixer.A_log", "mixer.dt_bias", "mixer.D", "mixer.norm.weight",
            "mixer.out_proj.weight"} <= set(flat)


def test_dist_checkpoint_round_trip_restores_every_tensor(megatron_world, tmp_path):
    from megatron.core import dist_checkpointing

    saved, restored = _mixer(megatron_world), _mixer(megatron_world)
    dist_checkpointing.save(saved.sharded_state_dict(), str(tmp_path))
    loaded = dist_checkpointing.load(restored.sharded_state_dict(), str(tmp_path))
    restored.load_state_dict(loaded)
    for (name, want), got in zip(saved.state_dict().items(), restored.state_dict().values()):
        if want is not None:
            assert torch.equal(got, want), name


_TP2_SCRIPT = """
import sys, torch, torch.distributed as dist
from megatron.core import dist_checkpointing, parallel_state
from megatron.core.process_groups_config import ProcessGroupCollection
from megatron.core.transformer.transformer_config import TransformerConfig
from megatron.core.tensor_parallel import ColumnParallelLinear, RowParallelLinear
from nemotron.runtime import cpu_compat
from nemotron.runtime.model.mamba2 import MambaMixerSubmodules, TorchMamba2Mixer

def main(out_path, ckpt_dir):
    dist.init_process_group("gloo")
    parallel_state.initialize_model_parallel(2, 1)
    cpu_compat.install()
    cpu_compat.seed_model_parallel(dist.get_rank())
    config = TransformerConfig(num_layers=1, hidden_size=32, num_attention_heads=4,
        use_cpu_initialization=True, tensor_model_parallel_size=2, mamba_num_heads=4,
        mamba_head_dim=16, mamba_state_dim=8, mamba_num_groups=2)
    mixer = TorchMamba2Mixer(config, MambaMixerSubmodules(ColumnParallelLinear, RowParallelLinear),
        d_model=32, chunk_size=8, pg_collection=ProcessGroupCollection.use_mpu_process_groups())
    with torch.no_grad():
        for p in (mixer.dt_bias, mixer.A_log, mixer.D, mixer.norm.weight):
            p.add_(0.1 * torch.randn_like(p))  # different on each rank
    out, _ = mixer(torch.randn(23, 2, 32, generator=torch.Generator().manual_seed(0)))
    dist_checkpointing.save(mixer.sharded_state_dict(), ckpt_dir)
    if dist.get_rank() == 0:
        torch.save(out, out_path)
    dist.destroy_process_group()

if __name__ == "__main__":
    main(*sys.argv[1:])
"""


@pytest.mark.slow
def test_tensor_parallel_2_checkpoint_reloads_at_tp1_with_same_output(megatron_world, tmp_path):
    """Heads and groups shard over TP ranks like upstream; a TP=2 checkpoint reshards to TP=1."""
    from megatron.core import dist_checkpointing

    script, out_path, ckpt_dir = tmp_path / "tp2.py", tmp_path / "out.pt", tmp_path / "ckpt"
    script.write_text(_TP2_SCRIPT)
    ckpt_dir.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--master-port", str(_free_port()), str(script), str(out_path), str(ckpt_dir)]
    repo_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": repo_root, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    mixer = _mixer(megatron_world)
    mixer.load_state_dict(dist_checkpointing.load(mixer.sharded_state_dict(), str(ckpt_dir)))
    out, _ = mixer(torch.randn(23, 2, 32, generator=torch.Generator().manual_seed(0)))
    assert _rel_err(out, torch.load(out_path)) < 1e-5


def _hybrid_stack_spec():
    from megatron.core.fusions.fused_bias_dropout import get_bias_dropout_add
    from megatron.core.ssm.mamba_block import MambaStack, MambaStackSubmodules
    from megatron.core.ssm.mamba_layer import MambaLayer, MambaLayerSubmodules
    from megatron.core.tensor_parallel import ColumnParallelLinear, RowParallelLinear
    from megatron.core.transformer.attention import SelfAttention, SelfAttentionSubmodules
    from megatron.core.transformer.dot_product_attention import DotProductAttention
    from megatron.core.transformer.enums import AttnMaskType
    from megatron.core.transformer.spec_utils import ModuleSpec
    from megatron.core.transformer.torch_norm import WrappedTorchNorm
    from megatron.core.transformer.transformer_layer import (
        TransformerLayer,
        TransformerLayerSubmodules,
    )

    attention = ModuleSpec(
        module=TransformerLayer,
        submodules=TransformerLayerSubmodules(
            input_layernorm=WrappedTorchNorm,
            self_attention=ModuleSpec(
                module=SelfAttention, params={"attn_mask_type": AttnMaskType.causal},
                submodules=SelfAttentionSubmodules(
                    linear_qkv=ColumnParallelLinear, core_attention=DotProductAttention,
                    linear_proj=RowParallelLinear)),
            self_attn_bda=get_bias_dropout_add))
    mamba = ModuleSpec(
        module=MambaLayer,
        submodules=MambaLayerSubmodules(
            norm=WrappedTorchNorm,
            mixer=ModuleSpec(module=TorchMamba2Mixer, submodules=MambaMixerSubmodules(
                in_proj=ColumnParallelLinear, out_proj=RowParallelLinear)),
            mamba_bda=get_bias_dropout_add,
            sharded_state_dict_keys_map={"norm.": "mixer.in_proj.layer_norm_"}))  # TE spec's names
    return ModuleSpec(module=MambaStack,
                      submodules=MambaStackSubmodules(mamba_layer=mamba, attention_layer=attention))


def test_tiny_hybrid_model_with_torch_mixer_trains_on_cpu(megatron_world):
    from megatron.core.models.mamba import MambaModel

    torch.manual_seed(0)
    model = MambaModel(config=_config(), mamba_stack_spec=_hybrid_stack_spec(), vocab_size=64,
                       max_sequence_length=32, hybrid_override_pattern="M*")
    assert isinstance(model.decoder.layers[0].mixer, TorchMamba2Mixer)
    norm_key = model.sharded_state_dict()["decoder.layers.0.norm.weight"].key
    assert norm_key == "decoder.layers.0.mixer.in_proj.layer_norm_weight"  # the TE spec's name
    tokens = torch.randint(0, 64, (4, 33))
    position_ids = torch.arange(32).expand(4, 32)
    causal_mask = torch.ones(1, 1, 32, 32).triu(diagonal=1).bool()  # None would allocate on "cuda"
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        loss = model(tokens[:, :-1], position_ids, causal_mask, labels=tokens[:, 1:]).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(map(torch.isfinite, torch.tensor(losses)))
    assert losses[-1] < losses[0] - 0.2, losses
