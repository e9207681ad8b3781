"""Building blocks of InternImage that do not involve the deformable operator.

Module and attribute names follow upstream (OpenGVLab/InternImage ``classification/models/
intern_image.py``) exactly, because they determine the state-dict keys of the released checkpoints
(e.g. the parameter-free permute modules occupy index 0 of ``norm1`` so LayerNorm weights live at
``patch_embed.norm1.1.weight``). Pure PyTorch: no timm, no mmcv.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    'AttentionPoolingBlock',
    'DownsampleLayer',
    'DropPath',
    'MLPLayer',
    'StemLayer',
    'ToChannelsFirst',
    'ToChannelsLast',
    'build_act_layer',
    'build_norm_layer',
]


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample (timm semantics).

    Args:
        drop_prob: probability of zeroing a sample's branch during training.
        scale_by_keep: divide kept samples by ``1 - drop_prob`` so the expectation is unchanged.
    """

    def __init__(self, drop_prob: float = 0.0, scale_by_keep: bool = True) -> None:
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise ValueError(f'DropPath: drop_prob must be in [0, 1), got {drop_prob}')
        self.drop_prob = drop_prob
        self.scale_by_keep = scale_by_keep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep_prob = 1.0 - self.drop_prob
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        mask = x.new_empty(shape).bernoulli_(keep_prob)
        if self.scale_by_keep:
            mask.div_(keep_prob)
        return x * mask

    def extra_repr(self) -> str:
        return f'drop_prob={self.drop_prob:.3f}'


class ToChannelsFirst(nn.Module):
    """NHWC -> NCHW (parameter-free; exists so it takes an index in the norm Sequentials)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 1, 2)


class ToChannelsLast(nn.Module):
    """NCHW -> NHWC."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1)


def build_norm_layer(
    dim: int,
    norm_layer: str,
    in_format: str = 'channels_last',
    out_format: str = 'channels_last',
    eps: float = 1e-6,
) -> nn.Sequential:
    """LayerNorm or BatchNorm2d wrapped in the permutes needed to go from ``in_format`` to ``out_format``.

    Args:
        dim: number of channels.
        norm_layer: ``'LN'`` (LayerNorm over the last dim) or ``'BN'`` (BatchNorm2d).
        in_format: ``'channels_last'`` (NHWC) or ``'channels_first'`` (NCHW) layout of the input.
        out_format: layout of the output.
        eps: LayerNorm epsilon (upstream uses 1e-6; BN keeps PyTorch's default).
    """
    for name, fmt in (('in_format', in_format), ('out_format', out_format)):
        if fmt not in ('channels_last', 'channels_first'):
            raise ValueError(
                f"build_norm_layer: {name} must be 'channels_last' or 'channels_first', got {fmt!r}"
            )
    layers: list[nn.Module] = []
    if norm_layer == 'BN':
        if in_format == 'channels_last':
            layers.append(ToChannelsFirst())
        layers.append(nn.BatchNorm2d(dim))
        if out_format == 'channels_last':
            layers.append(ToChannelsLast())
    elif norm_layer == 'LN':
        if in_format == 'channels_first':
            layers.append(ToChannelsLast())
        layers.append(nn.LayerNorm(dim, eps=eps))
        if out_format == 'channels_first':
            layers.append(ToChannelsFirst())
    else:
        raise ValueError(f"build_norm_layer: norm_layer must be 'LN' or 'BN', got {norm_layer!r}")
    return nn.Sequential(*layers)


def build_act_layer(act_layer: str) -> nn.Module:
    """Activation by upstream name: ``'GELU'``, ``'ReLU'`` or ``'SiLU'``."""
    if act_layer == 'GELU':
        return nn.GELU()
    if act_layer == 'ReLU':
        return nn.ReLU(inplace=True)
    if act_layer == 'SiLU':
        return nn.SiLU(inplace=True)
    raise ValueError(
        f"build_act_layer: act_layer must be 'GELU', 'ReLU' or 'SiLU', got {act_layer!r}"
    )


class StemLayer(nn.Module):
    """Two stride-2 3×3 convs (output stride 4); NCHW in, NHWC out.

    Args:
        in_chans: image channels.
        out_chans: channels of the first stage (C).
        act_layer: activation between the convs.
        norm_layer: ``'LN'`` or ``'BN'``.
    """

    def __init__(
        self,
        in_chans: int = 3,
        out_chans: int = 96,
        act_layer: str = 'GELU',
        norm_layer: str = 'BN',
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, out_chans // 2, kernel_size=3, stride=2, padding=1)
        self.norm1 = build_norm_layer(
            out_chans // 2, norm_layer, 'channels_first', 'channels_first'
        )
        self.act = build_act_layer(act_layer)
        self.conv2 = nn.Conv2d(out_chans // 2, out_chans, kernel_size=3, stride=2, padding=1)
        self.norm2 = build_norm_layer(out_chans, norm_layer, 'channels_first', 'channels_last')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm2(self.conv2(self.act(self.norm1(self.conv1(x)))))


class DownsampleLayer(nn.Module):
    """Stride-2 3×3 conv doubling the channels; NHWC in, NHWC out.

    Args:
        channels: input channels (output has ``2 * channels``).
        norm_layer: ``'LN'`` or ``'BN'``.
    """

    def __init__(self, channels: int, norm_layer: str = 'LN') -> None:
        super().__init__()
        # bias=False: the norm right after makes a bias redundant (and upstream checkpoints have none).
        self.conv = nn.Conv2d(
            channels, 2 * channels, kernel_size=3, stride=2, padding=1, bias=False
        )
        self.norm = build_norm_layer(2 * channels, norm_layer, 'channels_first', 'channels_last')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x.permute(0, 3, 1, 2)))


class MLPLayer(nn.Module):
    """fc1 -> act -> dropout -> fc2 -> dropout, on the last dimension.

    Args:
        in_features: input width.
        hidden_features: hidden width (defaults to ``in_features``).
        out_features: output width (defaults to ``in_features``).
        act_layer: activation name.
        drop: dropout probability.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int | None = None,
        out_features: int | None = None,
        act_layer: str = 'GELU',
        drop: float = 0.0,
    ) -> None:
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = build_act_layer(act_layer)
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class _CrossAttention(nn.Module):
    """Multi-head attention with separate q/k/v projections and optional separate q/k/v biases.

    The biases are separate ``Parameter``s (``q_bias`` …) rather than ``Linear`` biases because that is
    how the CLIP-projector head of InternImage-H/G stores them in its checkpoints.
    """

    def __init__(
        self, dim: int, num_heads: int = 8, qkv_bias: bool = False, out_dim: int | None = None
    ) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f'attention dim {dim} must be divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.k_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.k_bias = self.v_bias = None
        self.proj = nn.Linear(dim, out_dim or dim)

    def _heads(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        b, n, _ = x.shape
        return F.linear(x, weight, bias).reshape(b, n, self.num_heads, -1).transpose(1, 2)

    def forward(self, x_q: torch.Tensor, x_k: torch.Tensor, x_v: torch.Tensor) -> torch.Tensor:
        q = self._heads(x_q, self.q.weight, self.q_bias) * self.scale
        k = self._heads(x_k, self.k.weight, self.k_bias)
        v = self._heads(x_v, self.v.weight, self.v_bias)
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(x_q.shape[0], x_q.shape[1], -1)
        return self.proj(out)


class AttentionPoolingBlock(nn.Module):
    """CLIP-projector head of InternImage-H/G: attention pooling with the token mean as the query.

    Args:
        dim: token width.
        num_heads: attention heads.
        qkv_bias: learn separate q/k/v biases.
        norm_layer: norm applied to q, k and v inputs (``'LN'``).
        out_dim: output width (768 for the CLIP embedding).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        norm_layer: str = 'LN',
        out_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.norm1_q = build_norm_layer(dim, norm_layer, eps=1e-6)
        self.norm1_k = build_norm_layer(dim, norm_layer, eps=1e-6)
        self.norm1_v = build_norm_layer(dim, norm_layer, eps=1e-6)
        # Named ``cross_dcn`` upstream although it is plain attention; the name is in the checkpoints.
        self.cross_dcn = _CrossAttention(
            dim, num_heads=num_heads, qkv_bias=qkv_bias, out_dim=out_dim
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, dim) tokens -> (B, out_dim)."""
        x_q = self.norm1_q(x.mean(1, keepdim=True))
        x_k = self.norm1_k(x)
        x_v = self.norm1_v(x)
        return self.cross_dcn(x_q, x_k, x_v).squeeze(1)
