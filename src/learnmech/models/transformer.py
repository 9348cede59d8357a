"""A pre-LayerNorm, decoder-only character-level transformer (GPT-style).

For tokens ``t`` of shape ``(batch, T)``: ``x = E[t] + P[0:T]``, then ``depth`` blocks

    x ← x + β · Attn(LN(x)),   x ← x + β · MLP(LN(x)),

and logits ``W_out LN(x)`` of shape ``(batch, T, vocab)``. Causal attention with ``heads``
heads of size ``d = width / heads``; its logits are ``s · q kᵀ`` with ``s`` the attention
scale: ``1/√d`` under SP and NTP, ``1/d`` under μP (``√d₀/d`` relative to a base head size
``d₀``, see :func:`learnmech.param.attention_scale`). The logits are the output of their
own module (``blocks.<l>.attn.logits``), so hooks and the μP verifier can watch them.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learnmech.param import DepthRule, DepthScaling, ModulePlan, branch_multiplier, parametrized
from learnmech.param import attention_scale as param_attention_scale


class AttentionLogits(nn.Module):
    """``scale · q kᵀ`` for ``q``, ``k`` of shape ``(batch, heads, T, d)``; shape
    ``(batch, heads, T, T)``."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = float(scale)

    def forward(self, q: Tensor, k: Tensor) -> Tensor:
        return self.scale * (q @ k.transpose(-2, -1))


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with separate query, key, value, output maps."""

    def __init__(self, width: int, heads: int, scale: float) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not a multiple of heads {heads}")
        self.heads = heads
        self.query = nn.Linear(width, width, bias=False)
        self.key = nn.Linear(width, width, bias=False)
        self.value = nn.Linear(width, width, bias=False)
        self.out = nn.Linear(width, width, bias=False)
        self.logits = AttentionLogits(scale)

    def forward(self, x: Tensor) -> Tensor:
        b, t, c = x.shape
        q, k, v = (f(x).view(b, t, self.heads, c // self.heads).transpose(1, 2)
                   for f in (self.query, self.key, self.value))
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        a = self.logits(q, k).masked_fill(mask, float("-inf")).softmax(-1)
        return self.out((a @ v).transpose(1, 2).reshape(b, t, c))


class MLPBlock(nn.Module):
    """``W_2 GELU(W_1 x)`` with hidden size ``ffn``."""

    def __init__(self, width: int, ffn: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, ffn)
        self.proj = nn.Linear(ffn, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    """One pre-LN transformer block with branch multiplier β."""

    def __init__(self, width: int, heads: int, ffn: int, scale: float, beta: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads, scale)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = MLPBlock(width, ffn)
        self.beta = float(beta)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.beta * self.attn(self.ln1(x))
        return x + self.beta * self.mlp(self.ln2(x))


class CharTransformer(nn.Module):
    """Decoder-only transformer over ``vocab`` symbols and contexts of up to ``context``.

    Args:
        vocab: number of symbols.
        context: longest sequence.
        width: model size ``n`` (head size ``n / heads``, MLP size ``4n``).
        depth: number of blocks.
        heads: number of attention heads (fixed, so the head size grows with width).
        attention_scale: ``s`` on the attention logits (default ``1/√d``).
        branch_multiplier: β on every residual branch.
    """

    def __init__(
        self, vocab: int, context: int, width: int, depth: int = 2, heads: int = 4,
        attention_scale: float | None = None, branch_multiplier: float = 1.0,
    ) -> None:
        super().__init__()
        scale = attention_scale if attention_scale is not None else (width // heads) ** -0.5
        self.context = context
        self.token = nn.Embedding(vocab, width)
        self.position = nn.Embedding(context, width)
        self.blocks = nn.ModuleList(
            Block(width, heads, 4 * width, scale, branch_multiplier) for _ in range(depth)
        )
        self.ln = nn.LayerNorm(width)
        self.readout = nn.Linear(width, vocab, bias=False)

    def forward(self, tokens: Tensor) -> Tensor:
        t = tokens.shape[1]
        if t > self.context:
            raise ValueError(f"sequence length {t} exceeds the context {self.context}")
        x = self.token(tokens) + self.position(torch.arange(t, device=tokens.device))
        for block in self.blocks:
            x = block(x)
        return self.readout(self.ln(x))


def char_transformer(
    vocab: int, context: int, width: int, depth: int = 2, heads: int = 4,
    parametrization: str = "mup", optimizer: str = "adam", *, base_width: int | None = None,
    depth_rule: str | None = None, base_depth: int = 1,
    attention_scale: float | None = None, zero_query: bool = True,
    generator: torch.Generator | None = None, **options: Any,
) -> tuple[CharTransformer, ModulePlan]:
    """A :class:`CharTransformer` parametrized and initialized.

    The attention scale follows the parametrization (``1/d`` under μP relative to the base
    head size) unless ``attention_scale`` is given; ``depth_rule`` (``depth-mup`` or
    ``completep``) scales the residual branches relative to ``base_depth``. With
    ``zero_query`` the query weights start at zero (recommended for μP by Yang et al.
    2022: attention starts uniform at every width, as in the infinite-width limit, instead
    of with ``O(1/√d)`` random logits). ``options`` go to
    :func:`learnmech.param.parametrize`.
    """
    scaling = (DepthScaling(cast(DepthRule, depth_rule), depth, base_depth)
               if depth_rule else None)
    beta = branch_multiplier(scaling)
    base_head = (base_width or width) // heads
    scale = attention_scale
    if scale is None:
        scale = param_attention_scale(parametrization, width // heads, base_head)

    def factory(n: int) -> CharTransformer:
        return CharTransformer(vocab, context, n, depth, heads, scale, beta)

    zero = ("*.attn.query.weight",) if zero_query else ()
    model, plan = parametrized(factory, width, parametrization, optimizer, base_width=base_width,
                               generator=generator, depth=scaling, zero_init=zero, **options)
    return cast(CharTransformer, model), plan
