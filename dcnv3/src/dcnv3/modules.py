"""The DCNv3 block used inside InternImage (upstream ``ops_dcnv3/modules/dcnv3.py`` drop-in).

Parameter names match upstream exactly so released checkpoints load: ``dw_conv.0`` (depthwise conv),
``dw_conv.1.1`` (LayerNorm after a permute; ``dw_conv.1.0`` for BatchNorm), ``offset``, ``mask``,
``input_proj``, ``output_proj`` and, with ``center_feature_scale``,
``center_feature_scale_proj_weight`` / ``center_feature_scale_proj_bias``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import num_points
from .functional import dcnv3
from .reference import dcnv3_reference

__all__ = [
    'CenterFeatureScaleModule',
    'DCNv3',
    'DCNv3_pytorch',
    'build_act_layer',
    'build_norm_layer',
    'to_channels_first',
    'to_channels_last',
]


class _ToChannelsFirst(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 1, 2)


class _ToChannelsLast(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1)


# Upstream names of the permute modules (ops_dcnv3/modules/dcnv3.py).
to_channels_first = _ToChannelsFirst
to_channels_last = _ToChannelsLast


class CenterFeatureScaleModule(nn.Module):
    """Upstream helper: per-group gate ``sigmoid(query @ weight.T + bias)``."""

    def forward(
        self,
        query: torch.Tensor,
        center_feature_scale_proj_weight: torch.Tensor,
        center_feature_scale_proj_bias: torch.Tensor,
    ) -> torch.Tensor:
        return F.linear(
            query, weight=center_feature_scale_proj_weight, bias=center_feature_scale_proj_bias
        ).sigmoid()


def build_norm_layer(
    dim: int, norm_layer: str, in_format: str = 'channels_last', out_format: str = 'channels_last'
) -> nn.Sequential:
    """Norm with the permutes upstream puts around it (the permutes occupy Sequential indices).

    Args:
        dim: number of channels.
        norm_layer: ``'LN'`` (LayerNorm, eps 1e-6) or ``'BN'`` (BatchNorm2d).
        in_format: ``'channels_first'`` or ``'channels_last'`` layout of the input.
        out_format: layout of the output.
    """
    for name, fmt in (('in_format', in_format), ('out_format', out_format)):
        if fmt not in ('channels_first', 'channels_last'):
            raise ValueError(f"{name} must be 'channels_first' or 'channels_last', got {fmt!r}")
    layers: list[nn.Module] = []
    if norm_layer == 'BN':
        if in_format == 'channels_last':
            layers.append(_ToChannelsFirst())
        layers.append(nn.BatchNorm2d(dim))
        if out_format == 'channels_last':
            layers.append(_ToChannelsLast())
    elif norm_layer == 'LN':
        if in_format == 'channels_first':
            layers.append(_ToChannelsLast())
        layers.append(nn.LayerNorm(dim, eps=1e-6))
        if out_format == 'channels_first':
            layers.append(_ToChannelsFirst())
    else:
        raise ValueError(f"norm_layer must be 'LN' or 'BN', got {norm_layer!r}")
    return nn.Sequential(*layers)


def build_act_layer(act_layer: str) -> nn.Module:
    """``'ReLU'``, ``'SiLU'`` or ``'GELU'`` as a module."""
    layers = {'ReLU': nn.ReLU, 'SiLU': nn.SiLU, 'GELU': nn.GELU}
    if act_layer not in layers:
        raise ValueError(f'act_layer must be one of {sorted(layers)}, got {act_layer!r}')
    return layers[act_layer](inplace=True) if act_layer != 'GELU' else nn.GELU()


def _is_power_of_2(n: int) -> bool:
    return n > 0 and (n & (n - 1)) == 0


class _DCNv3Base(nn.Module):
    """Shared body of :class:`DCNv3` and :class:`DCNv3_pytorch`; subclasses choose the core op."""

    _core: Callable[..., torch.Tensor]

    def __init__(
        self,
        channels: int = 64,
        kernel_size: int = 3,
        dw_kernel_size: int | None = None,
        stride: int = 1,
        pad: int = 1,
        dilation: int = 1,
        group: int = 4,
        offset_scale: float = 1.0,
        act_layer: str = 'GELU',
        norm_layer: str = 'LN',
        center_feature_scale: bool = False,
        remove_center: bool = False,
    ) -> None:
        super().__init__()
        if channels % group != 0:
            raise ValueError(f'channels must be divisible by group, but got {channels} and {group}')
        group_channels = channels // group
        if not _is_power_of_2(group_channels):
            warnings.warn(
                "You'd better set channels in DCNv3 to make the dimension of each attention head "
                'a power of 2 which is more efficient in the CUDA implementation.',
                stacklevel=2,
            )
        if remove_center and kernel_size % 2 == 0:
            raise ValueError('remove_center is only compatible with an odd kernel_size')
        dw_kernel_size = dw_kernel_size if dw_kernel_size is not None else kernel_size
        self.channels = channels
        self.kernel_size = kernel_size
        self.dw_kernel_size = dw_kernel_size
        self.stride = stride
        self.pad = pad
        self.dilation = dilation
        self.group = group
        self.group_channels = group_channels
        self.offset_scale = offset_scale
        self.center_feature_scale = center_feature_scale
        self.remove_center = int(remove_center)
        points = num_points(kernel_size, kernel_size, bool(remove_center))

        self.dw_conv = nn.Sequential(
            nn.Conv2d(
                channels,
                channels,
                kernel_size=dw_kernel_size,
                stride=1,
                padding=(dw_kernel_size - 1) // 2,
                groups=channels,
            ),
            build_norm_layer(channels, norm_layer, 'channels_first', 'channels_last'),
            build_act_layer(act_layer),
        )
        self.offset = nn.Linear(channels, group * points * 2)
        self.mask = nn.Linear(channels, group * points)
        self.input_proj = nn.Linear(channels, channels)
        self.output_proj = nn.Linear(channels, channels)
        self._reset_parameters()
        if center_feature_scale:
            self.center_feature_scale_proj_weight = nn.Parameter(
                torch.zeros((group, channels), dtype=torch.float)
            )
            self.center_feature_scale_proj_bias = nn.Parameter(
                torch.zeros(group, dtype=torch.float)
            )

    def _reset_parameters(self) -> None:
        # Zero offsets and a uniform mask at init: the op starts as a plain 3x3 average sampler.
        nn.init.constant_(self.offset.weight, 0.0)
        nn.init.constant_(self.offset.bias, 0.0)
        nn.init.constant_(self.mask.weight, 0.0)
        nn.init.constant_(self.mask.bias, 0.0)
        nn.init.xavier_uniform_(self.input_proj.weight)
        nn.init.constant_(self.input_proj.bias, 0.0)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.constant_(self.output_proj.bias, 0.0)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Args:
            input: ``(N, H, W, C)`` channels-last.

        Returns:
            ``(N, H_out, W_out, C)`` channels-last.
        """
        if input.dim() != 4 or input.shape[-1] != self.channels:
            raise ValueError(
                f'DCNv3 expects input of shape (N, H, W, {self.channels}), got {tuple(input.shape)}'
            )
        n, h, w, _ = input.shape
        x = self.input_proj(input)
        x_proj = x
        dtype = x.dtype

        # The offset/mask branch sees the un-projected input, as upstream.
        x1 = self.dw_conv(input.permute(0, 3, 1, 2))
        offset = self.offset(x1)
        mask = self.mask(x1).reshape(n, h, w, self.group, -1)
        mask = F.softmax(mask, -1).reshape(n, h, w, -1).type(dtype)

        x = self._core(
            x, offset.type(dtype), mask,
            self.kernel_size, self.kernel_size, self.stride, self.stride, self.pad, self.pad,
            self.dilation, self.dilation, self.group, self.group_channels,
            self.offset_scale, bool(self.remove_center),
        )  # fmt: skip

        if self.center_feature_scale:
            scale = F.linear(
                x1, self.center_feature_scale_proj_weight, self.center_feature_scale_proj_bias
            ).sigmoid()  # (N, H, W, G), as upstream's CenterFeatureScaleModule
            scale = scale[..., None].expand(-1, -1, -1, -1, self.group_channels).flatten(-2)
            x = x * (1 - scale) + x_proj * scale
        return self.output_proj(x)

    def extra_repr(self) -> str:
        return (
            f'channels={self.channels}, kernel_size={self.kernel_size}, group={self.group}, '
            f'offset_scale={self.offset_scale}, remove_center={bool(self.remove_center)}'
        )


class DCNv3(_DCNv3Base):
    """DCNv3 block on the compiled kernel (falls back to the reference, with one warning)."""

    _core = staticmethod(dcnv3)


class DCNv3_pytorch(_DCNv3Base):  # upstream name, kept for drop-in compatibility
    """DCNv3 block that always uses the pure-PyTorch reference."""

    _core = staticmethod(dcnv3_reference)
