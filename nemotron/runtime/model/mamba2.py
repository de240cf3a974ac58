"""Pure-PyTorch Mamba-2 mixer: a drop-in for Megatron-Core's MambaMixer where mamba_ssm is missing.

megatron-core's `MambaMixer` runs on the `mamba_ssm`/`causal_conv1d` CUDA and Triton kernels;
without them its constructor raises (and in 0.16.1 its module does not import without triton), so
hybrid models with `M` layers (Nemotron 3 Nano) cannot run on a CPU box. `TorchMamba2Mixer`
computes the same function in plain PyTorch: in_proj -> (z, xBC, dt); causal depthwise conv1d +
SiLU on xBC -> (x, B, C); SSD scan with dt = softplus(dt + dt_bias), A = -exp(A_log) and skip D, in
fp32; RMSNorm(y * silu(z)) per group; out_proj. Constructor, forward contract, parameter names,
shapes and dtypes, tensor-parallel sharding of heads and groups, and checkpoint layout (in_proj
saved as z/x/B/C/dt parts, conv1d as x/B/C) follow upstream, so checkpoints move between the two
classes. `ssd_chunked` is the chunked SSD algorithm (Dao & Gu 2024, "Transformers are SSMs");
`ssd_naive` is the step-by-step recurrence it is tested against. Packed samples (SFT, DPO): with
`packed_seq_params` (nemotron/runtime/model/packed.py), the argument Megatron passes every layer, the
scan is segment-aware: each row is mixed in one pass, the conv window and the SSM state reset at
every sample start (the decay into a start is exp(-inf) = 0, the conv taps across it are masked), so
every sample gets what it would get alone, with no unpacking. Generation keeps
the conv window and SSM state in Megatron's static inference context (`mamba2_cache`). No context
parallelism. Where mamba_ssm exists, its fused kernels are much faster.
"""

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from megatron.core.dist_checkpointing.mapping import ShardedTensorFactory
from megatron.core.tensor_parallel import get_cuda_rng_tracker
from megatron.core.transformer.module import MegatronModule
from megatron.core.transformer.spec_utils import ModuleSpec, build_module
from nemotron.runtime.model.packed import sample_starts
from megatron.core.transformer.utils import (
    ensure_metadata_has_dp_cp_group,
    make_sharded_tensors_for_checkpoint,
    sharded_state_dict_default,
)


def _segsum(a: torch.Tensor) -> torch.Tensor:
    """out[..., i, j] = a[..., j+1] + ... + a[..., i] for j <= i, -inf above the diagonal."""
    t = a.size(-1)
    a = a.unsqueeze(-1).expand(*a.shape, t)  # a[..., i, j] = a[..., i]
    below = torch.tril(torch.ones(t, t, dtype=torch.bool, device=a.device), diagonal=-1)
    out = torch.cumsum(a.masked_fill(~below, 0.0), dim=-2)
    keep = torch.tril(torch.ones(t, t, dtype=torch.bool, device=a.device))
    return out.masked_fill(~keep, -math.inf)


def _add_skip(y, x, D):
    if D is None:
        return y
    return y + x * (D[:, None] if D.dim() == 1 else D)


def ssd_naive(x, dt, A, B, C, D=None):
    """Reference Mamba-2 scan, one timestep at a time.

    x [b, l, h, p], dt [b, l, h] (already positive), A [h] (negative), B, C [b, l, g, n] with
    h % g == 0, D [h] or [h, p]. State s [b, h, p, n]:
    s_t = exp(dt_t A) s_{t-1} + dt_t x_t B_t^T;  y_t = s_t C_t + D x_t.  Returns y [b, l, h, p].
    """
    b, l, h, p = x.shape
    rep = h // B.shape[2]
    B, C = B.repeat_interleave(rep, dim=2), C.repeat_interleave(rep, dim=2)
    state = x.new_zeros(b, h, p, B.shape[-1])
    ys = []
    for t in range(l):
        decay = torch.exp(dt[:, t] * A)[:, :, None, None]
        inp = (dt[:, t, :, None] * x[:, t])[..., None] * B[:, t, :, None, :]
        state = state * decay + inp
        ys.append(torch.einsum("bhpn,bhn->bhp", state, C[:, t]))
    return _add_skip(torch.stack(ys, dim=1), x, D)


def _to_chunks(t, chunk_size, pad):
    t = F.pad(t, (0, 0) * (t.dim() - 2) + (0, pad))  # zero dt in padding: no effect on outputs
    return t.reshape(t.shape[0], -1, chunk_size, *t.shape[2:])


def _exclusive_reverse_cumsum(a: torch.Tensor, dim: int) -> torch.Tensor:
    """out[s] = a[s+1] + ... + a[last] along `dim`: a sum, never a difference (a may hold -inf)."""
    total = torch.flip(torch.cumsum(torch.flip(a, (dim,)), dim), (dim,))
    return torch.cat([total.narrow(dim, 1, a.size(dim) - 1), torch.zeros_like(total.narrow(dim, 0, 1))], dim)


def ssd_chunked(x, dt, A, B, C, chunk_size, D=None, starts=None):
    """Same result as `ssd_naive`, computed with the chunked SSD algorithm (Mamba-2 paper, §6).

    Within a chunk the scan is a masked quadratic form (attention-like); across chunks, states are
    passed by a short recurrence over chunk boundaries. Heads share B/C within a group without
    copying them. Any sequence length works (the tail chunk is zero-padded). `starts` [b, l] bool:
    the state is zero before these positions (packed samples): their log-decay is -inf, and every
    decay is a sum of log-decays (never a difference), so no inf - inf appears.
    """
    b, l, h, p = x.shape
    g, pad = B.shape[2], (-l) % chunk_size
    log_decay = dt * A
    if starts is not None:
        log_decay = log_decay.masked_fill(starts[..., None], -math.inf)
    xs = _to_chunks(x * dt[..., None], chunk_size, pad).unflatten(3, (g, h // g))  # b c q g r p
    a = _to_chunks(log_decay, chunk_size, pad).unflatten(3, (g, h // g))  # b c q g r: log-decays
    B, C = _to_chunks(B, chunk_size, pad), _to_chunks(C, chunk_size, pad)  # b c q g n
    a_cum = torch.cumsum(a, dim=2)
    # 1. outputs from inputs in the same chunk (attention-like, with causal decay weights)
    scores = torch.einsum("bclgn,bcsgn->bcgls", C, B)[:, :, :, None]
    scores = scores * torch.exp(_segsum(a.movedim(2, -1)))  # b c g r l s
    y = torch.einsum("bcgrls,bcsgrp->bclgrp", scores, xs)
    # 2. each chunk's contribution to the state at its end
    decay_to_end = torch.exp(_exclusive_reverse_cumsum(a, 2))[..., None]
    states = torch.einsum("bcsgn,bcsgrp->bcgrpn", B, xs * decay_to_end)
    # 3. state entering each chunk: recurrence over chunk boundaries
    states = torch.cat([torch.zeros_like(states[:, :1]), states], dim=1)
    chunk_decay = torch.exp(_segsum(F.pad(a_cum[:, :, -1].movedim(1, -1), (1, 0))))  # b g r z c
    states = torch.einsum("bgrzc,bcgrpn->bzgrpn", chunk_decay, states)[:, :-1]
    # 4. outputs from the state entering the chunk
    y = y + torch.einsum("bclgn,bcgrpn->bclgrp", C, states) * torch.exp(a_cum)[..., None]
    return _add_skip(y.reshape(b, -1, h, p)[:, :l], x, D)


class GatedRMSNorm(nn.Module):
    """RMSNorm(x * silu(z)) over groups of `group_size` channels (mamba_ssm's RMSNormGated with
    norm_before_gate=False), computed in fp32, returned in the input's dtype."""

    def __init__(self, hidden_size, group_size, eps=1e-5, device=None, dtype=None):
        super().__init__()
        self.group_size, self.eps = group_size, eps
        self.weight = nn.Parameter(torch.ones(hidden_size, device=device, dtype=dtype))

    def forward(self, x, z=None):
        dtype = x.dtype
        x = x.float() if z is None else x.float() * F.silu(z.float())
        xg = x.unflatten(-1, (-1, self.group_size))
        xg = xg * torch.rsqrt(xg.square().mean(-1, keepdim=True) + self.eps)
        return (xg.flatten(-2) * self.weight.float()).to(dtype)


@dataclass
class MambaMixerSubmodules:
    """Specs of the input and output linear layers (mirrors megatron's MambaMixerSubmodules)."""

    in_proj: Union[ModuleSpec, type] = None
    out_proj: Union[ModuleSpec, type] = None


def _param_device(config):
    if config.use_cpu_initialization or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())


def _tp_param(tensor):
    param = nn.Parameter(tensor)
    param.tensor_model_parallel = True
    return param


class TorchMamba2Mixer(MegatronModule):
    """Drop-in for megatron.core.ssm.mamba_mixer.MambaMixer (0.16.1) without mamba_ssm.

    Same arguments as MambaMixer; `d_state`, `headdim`, `ngroups`, `use_mem_eff_path` are read from
    config (`mamba_state_dim`, `mamba_head_dim`, `mamba_num_groups`) as upstream does, the
    deprecated arguments are ignored. `chunk_size` is the SSD chunk length.
    """

    def __init__(self, config, submodules, d_model, d_conv=4, conv_init=None, expand=2,
                 A_init_range=(1, 16), D_has_hdim=False, rmsnorm=True, norm_before_gate=False,
                 dt_min=0.001, dt_max=0.1, dt_init="random", dt_scale=1.0, dt_init_floor=1e-4,
                 bias=False, conv_bias=True, chunk_size=128, layer_number=None,
                 use_mem_eff_path=None, d_state=None, headdim=None, ngroups=None,
                 pg_collection=None, pp_layer_offset=0):
        super().__init__(config)
        assert pg_collection is not None, "pg_collection must be provided for TorchMamba2Mixer"
        if bias or norm_before_gate:
            raise ValueError("TorchMamba2Mixer, like MambaMixer, needs bias=False and "
                             "norm_before_gate=False")
        if pg_collection.cp.size() > 1:
            raise NotImplementedError("TorchMamba2Mixer has no context parallelism; set "
                                      "context_parallel_size=1 or install mamba_ssm")
        self.d_model, self.d_conv, self.chunk_size = d_model, d_conv, chunk_size
        self.D_has_hdim, self.rmsnorm, self.norm_before_gate = D_has_hdim, rmsnorm, norm_before_gate
        self.layer_number, self.pp_layer_offset = layer_number, pp_layer_offset
        self.pg_collection, self.tp_group = pg_collection, pg_collection.tp
        self._init_dims(expand, pg_collection.tp.size())
        conv_dim = self.d_inner_local_tp + 2 * self.ngroups_local_tp * self.d_state
        self.in_proj = build_module(
            submodules.in_proj, d_model,
            self.d_inner * 2 + 2 * self.ngroups * self.d_state + self.nheads,  # z x B C dt
            config=config, init_method=config.init_method, gather_output=False, bias=bias,
            skip_bias_add=False, is_expert=False, tp_comm_buffer_name="fc1",
            tp_group=self.tp_group)
        device = _param_device(config)
        with get_cuda_rng_tracker().fork():
            self._init_conv(conv_dim, conv_bias, conv_init, device)
            self._init_dt_and_A(dt_min, dt_max, dt_init_floor, A_init_range, device)
        self.D = _tp_param(torch.ones(self.d_inner_local_tp if D_has_hdim else self.nheads_local_tp,
                                      device=device))  # fp32, like upstream
        if rmsnorm:
            self.norm = GatedRMSNorm(self.d_inner_local_tp,
                                     self.d_inner_local_tp // self.ngroups_local_tp,
                                     device=device, dtype=config.params_dtype)
            self.norm.weight.tensor_model_parallel = True
        self.out_proj = build_module(
            submodules.out_proj, self.d_inner, d_model, config=config,
            init_method=config.output_layer_init_method, bias=bias, input_is_parallel=True,
            skip_bias_add=True, is_expert=False, tp_comm_buffer_name="fc2",
            tp_group=self.tp_group)

    def _init_dims(self, expand, tp_size):
        cfg = self.config
        self.d_state, self.headdim, self.ngroups = (
            cfg.mamba_state_dim, cfg.mamba_head_dim, cfg.mamba_num_groups)
        self.nheads = cfg.mamba_num_heads or int(expand * self.d_model) // self.headdim
        self.d_inner = self.nheads * self.headdim
        if cfg.mamba_num_heads is None and int(expand * self.d_model) % self.headdim:
            raise ValueError(f"d_inner={int(expand * self.d_model)} is not divisible by "
                             f"mamba_head_dim={self.headdim}")
        for name, n, k in (("nheads", self.nheads, tp_size), ("ngroups", self.ngroups, tp_size),
                           ("nheads", self.nheads, self.ngroups)):
            if n % k:
                raise ValueError(f"Mamba {name}={n} must be divisible by {k} "
                                 "(tensor-parallel size or mamba_num_groups)")
        self.nheads_local_tp = self.nheads // tp_size
        self.d_inner_local_tp = self.d_inner // tp_size
        self.ngroups_local_tp = self.ngroups // tp_size

    def _init_conv(self, conv_dim, conv_bias, conv_init, device):
        self.conv1d = nn.Conv1d(conv_dim, conv_dim, kernel_size=self.d_conv, groups=conv_dim,
                                bias=conv_bias, padding=self.d_conv - 1, device=device,
                                dtype=self.config.params_dtype)
        for param in self.conv1d.parameters():
            param.tensor_model_parallel = True
        if self.config.perform_initialization:
            if conv_init is not None:
                nn.init.uniform_(self.conv1d.weight, -conv_init, conv_init)
            else:
                nn.init.kaiming_uniform_(self.conv1d.weight, a=math.sqrt(5))

    def _init_dt_and_A(self, dt_min, dt_max, dt_init_floor, A_init_range, device):
        n = self.nheads_local_tp
        log_span = math.log(dt_max) - math.log(dt_min)
        dt = torch.exp(torch.rand(n, device=device, dtype=self.config.params_dtype) * log_span
                       + math.log(dt_min)).clamp(min=dt_init_floor)
        self.dt_bias = _tp_param(dt + torch.log(-torch.expm1(-dt)))  # softplus(dt_bias) == dt
        assert 0 < A_init_range[0] <= A_init_range[1], A_init_range
        A = torch.empty(n, dtype=torch.float32, device=device)
        if self.config.perform_initialization:
            A.uniform_(*A_init_range)
        self.A_log = _tp_param(torch.log(A))  # fp32, like upstream

    def forward(self, hidden_states, inference_context=None, *, inference_params=None,
                packed_seq_params=None):
        """hidden_states [seq, batch, hidden] -> (out [seq, batch, hidden], out_bias)."""
        context = inference_context if inference_context is not None else inference_params
        if context is not None and not self.training:  # generation: conv/SSM state cache
            from nemotron.runtime.model.mamba2_cache import cached_mix

            return self.out_proj(cached_mix(self, self.in_proj(hidden_states)[0], context))
        zxBCdt, _ = self.in_proj(hidden_states)
        if packed_seq_params is not None:
            return self.out_proj(self._mix_packed(zxBCdt, packed_seq_params))
        return self.out_proj(self.mix(zxBCdt))

    def _mix_packed(self, zxBCdt, params):
        """`mix` of packed rows in one pass, conv and SSM state reset at every sample start."""
        seq, b, _ = zxBCdt.shape
        if int(params.cu_seqlens_q[-1]) != b * seq:
            raise ValueError(f"packed_seq_params cover {int(params.cu_seqlens_q[-1])} tokens, not the "
                             f"[batch, seq] = {(b, seq)} of the hidden states")
        return self.mix(zxBCdt, starts=sample_starts(params, b, seq, zxBCdt.device))

    def mix(self, zxBCdt, starts=None):
        """[l, b, in_proj width] -> y [l, b, d_inner_local_tp] (conv, scan, gate, norm); `starts`
        [b, l] bool marks packed sample starts (state reset there). Between `in_proj` and
        `out_proj`; the generation cache (mamba2_cache.py) calls it for a prompt's prefill."""
        g_n = self.ngroups_local_tp * self.d_state
        z, xBC, dt = torch.split(zxBCdt.transpose(0, 1),
                                 [self.d_inner_local_tp, self.d_inner_local_tp + 2 * g_n,
                                  self.nheads_local_tp], dim=-1)
        x, B, C = torch.split(self._causal_conv(xBC, starts), [self.d_inner_local_tp, g_n, g_n], dim=-1)
        y = ssd_chunked(
            x.unflatten(-1, (-1, self.headdim)).float(),
            F.softplus(dt.float() + self.dt_bias.float()),
            -torch.exp(self.A_log.float()),
            B.unflatten(-1, (-1, self.d_state)).float(),
            C.unflatten(-1, (-1, self.d_state)).float(),
            self.chunk_size,
            D=self.D.float().view(-1, self.headdim) if self.D_has_hdim else self.D.float(),
            starts=starts)
        y = y.flatten(-2).to(zxBCdt.dtype)
        y = self.norm(y, z) if self.rmsnorm else y * F.silu(z)
        return y.transpose(0, 1).contiguous()

    def _causal_conv(self, xBC, starts=None):
        """Depthwise causal conv1d + SiLU over [b, l, channels]; with `starts` [b, l], no tap reaches
        back across a sample start."""
        w = self.conv1d.weight
        if starts is None:
            out = F.conv1d(F.pad(xBC.transpose(1, 2), (self.d_conv - 1, 0)), w, self.conv1d.bias,
                           groups=w.shape[0])
            return F.silu(out).transpose(1, 2)
        sample = torch.cumsum(starts, dim=1)  # [b, l]: which sample each token is in
        out = xBC * w[:, 0, -1]
        for back in range(1, self.d_conv):  # tap `back` tokens back: weight w[..., d_conv-1-back]
            earlier = F.pad(xBC, (0, 0, back, 0))[:, :-back]
            same = sample == F.pad(sample, (back, 0), value=-1)[:, :-back]
            out = out + earlier * same[..., None].to(xBC.dtype) * w[:, 0, self.d_conv - 1 - back]
        if self.conv1d.bias is not None:
            out = out + self.conv1d.bias
        return F.silu(out)

    def sharded_state_dict(self, prefix="", sharded_offsets=(), metadata=None):
        """Upstream MambaMixer's checkpoint layout: SSM tensors sharded on dim 0 across TP,
        in_proj.weight split into z/x/B/C/dt and conv1d.{weight,bias} into x/B/C."""
        metadata = ensure_metadata_has_dp_cp_group(metadata)
        linears = ("in_proj", "out_proj")
        own = {k: v for k, v in self.state_dict(prefix="", keep_vars=True).items()
               if k.split(".")[0] not in linears}
        sharded = make_sharded_tensors_for_checkpoint(
            own, prefix, dict.fromkeys(own, 0), sharded_offsets, tp_group=self.tp_group,
            dp_cp_group=metadata["dp_cp_group"])
        for name in linears:
            sharded.update(sharded_state_dict_default(
                getattr(self, name), f"{prefix}{name}.", sharded_offsets, metadata,
                tp_group=self.tp_group))
        d, h = self.d_inner_local_tp, self.nheads_local_tp
        g_n = self.ngroups_local_tp * self.d_state
        key = f"{prefix}in_proj.weight"
        sharded[key] = split_factory(sharded[key], [d, d, g_n, g_n, h], ["z", "x", "B", "C", "dt"])
        for key in (f"{prefix}conv1d.weight", f"{prefix}conv1d.bias"):
            if key in sharded:
                sharded[key] = split_factory(sharded[key], [d, g_n, g_n], ["x", "B", "C"])
        return sharded


def split_factory(sh_ten, sizes, names):
    """Save a dim-0 ShardedTensor as parts `<key>.<name>` (upstream's _split_tensor_factory)."""
    template = sh_ten.without_data()
    if sum(sizes) != template.local_shape[0]:
        raise ValueError(f"{sh_ten.key}: parts {sizes} do not cover {template.local_shape}")

    @torch.no_grad()
    def build(key, t, replica_id, flattened_range):
        whole = dataclasses.replace(template, key=key, data=t, dtype=t.dtype,
                                    replica_id=replica_id, flattened_range=flattened_range)
        parts, start = [], 0
        for size, name in zip(sizes, names):
            for part in whole.narrow(0, start, size):
                part.key = f"{part.key}.{name}"
                parts.append(part)
            start += size
        return parts

    return ShardedTensorFactory(sh_ten.key, sh_ten.data, build, torch.cat, sh_ten.replica_id)
