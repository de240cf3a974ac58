"""Inference cache of `TorchMamba2Mixer`: the conv window and the SSM state, per layer and sample.

Megatron's static inference context (`StaticInferenceContext`) holds, per layer number, what a
layer needs to continue a sequence; attention layers keep their keys and values there, and upstream
MambaMixer its (conv_state, ssm_state). We keep the same pair under the mixer's layer number:
- prefill (`sequence_len_offset == 0`): the mixer's full forward (`mix`, so outputs are exactly a
  full forward's), plus the state it ends in: the last d_conv - 1 conv inputs, and
  s = sum_t exp(A * (dt_{t+1} + ... + dt_l)) dt_t x_t B_t^T;
- decode: one recurrence step per token, s <- exp(dt A) s + dt x B^T, y = s C + D x, through the
  same conv, gate and norm as the full forward.
"""

from __future__ import annotations

from typing import Any, Tuple

import torch
import torch.nn.functional as F


def _split(mixer: Any, zxBCdt: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[b, l, width] -> z, xBC (before the conv), dt (before softplus)."""
    d, g_n = mixer.d_inner_local_tp, mixer.ngroups_local_tp * mixer.d_state
    return torch.split(zxBCdt, [d, d + 2 * g_n, mixer.nheads_local_tp], dim=-1)


def _ssm_inputs(mixer: Any, xBC: torch.Tensor, dt: torch.Tensor):
    """After the conv: x [b, l, h, p], dt [b, l, h] (positive), A [h], B, C [b, l, h, n] (fp32)."""
    d, g_n = mixer.d_inner_local_tp, mixer.ngroups_local_tp * mixer.d_state
    x, B, C = torch.split(xBC, [d, g_n, g_n], dim=-1)
    rep = mixer.nheads_local_tp // mixer.ngroups_local_tp
    B = B.unflatten(-1, (-1, mixer.d_state)).float().repeat_interleave(rep, dim=2)
    C = C.unflatten(-1, (-1, mixer.d_state)).float().repeat_interleave(rep, dim=2)
    dt = F.softplus(dt.float() + mixer.dt_bias.float())
    return x.unflatten(-1, (-1, mixer.headdim)).float(), dt, -torch.exp(mixer.A_log.float()), B, C


def _prefill(mixer: Any, zxBCdt: torch.Tensor):
    """Full-forward outputs [l, b, d_inner] and the (conv_state, ssm_state) they end in."""
    y = mixer.mix(zxBCdt)
    _, xBC, dt = _split(mixer, zxBCdt.transpose(0, 1))
    keep = mixer.d_conv - 1
    conv_state = F.pad(xBC.transpose(1, 2), (max(0, keep - xBC.shape[1]), 0))[..., -keep:]
    x, dt, A, B, _ = _ssm_inputs(mixer, mixer._causal_conv(xBC), dt)
    a = dt * A  # [b, l, h] log-decays
    after = a.sum(1, keepdim=True) - torch.cumsum(a, dim=1)  # decay from t to the end
    ssm_state = torch.einsum("blh,blhp,blhn->bhpn", torch.exp(after) * dt, x, B)
    return y, conv_state.contiguous(), ssm_state


def _step(mixer: Any, zxBCdt: torch.Tensor, conv_state: torch.Tensor, ssm_state: torch.Tensor):
    """One token [b, width] -> y [b, d_inner], and the new states."""
    z, xBC, dt = _split(mixer, zxBCdt)
    window = torch.cat([conv_state, xBC[..., None]], dim=-1)  # [b, channels, d_conv]
    w = mixer.conv1d.weight[:, 0, :]  # [channels, d_conv]
    conv = (window * w).sum(-1)
    if mixer.conv1d.bias is not None:
        conv = conv + mixer.conv1d.bias
    x, dt, A, B, C = _ssm_inputs(mixer, F.silu(conv)[:, None], dt[:, None])
    x, dt, B, C = x[:, 0], dt[:, 0], B[:, 0], C[:, 0]
    ssm_state = ssm_state * torch.exp(dt * A)[..., None, None] + (dt[..., None] * x)[..., None] * B[:, :, None, :]
    y = torch.einsum("bhpn,bhn->bhp", ssm_state, C)
    D = mixer.D.float().view(-1, mixer.headdim) if mixer.D_has_hdim else mixer.D.float()[:, None]
    y = (y + x * D).flatten(-2).to(zxBCdt.dtype)
    y = mixer.norm(y, z) if mixer.rmsnorm else y * F.silu(z)
    return y, window[..., 1:].contiguous(), ssm_state


def cached_mix(mixer: Any, zxBCdt: torch.Tensor, context: Any) -> torch.Tensor:
    """The mixer's y [l, b, d_inner] for in_proj outputs [l, b, width], continuing the sequence
    `context` (a static inference context) holds for this layer and updating it."""
    key = mixer.layer_number
    if context.sequence_len_offset == 0:
        y, conv_state, ssm_state = _prefill(mixer, zxBCdt)
        context.key_value_memory_dict[key] = (conv_state, ssm_state)
        return y
    conv_state, ssm_state = context.key_value_memory_dict[key]
    outs = []
    for t in range(zxBCdt.shape[0]):
        y, conv_state, ssm_state = _step(mixer, zxBCdt[t], conv_state, ssm_state)
        outs.append(y)
    context.key_value_memory_dict[key] = (conv_state, ssm_state)
    return torch.stack(outs, dim=0)
