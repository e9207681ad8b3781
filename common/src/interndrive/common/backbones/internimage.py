"""InternImage (Wang et al., CVPR 2023): a hierarchical backbone built on DCNv3 deformable convolution.

One implementation for classification (T–XL conv head, H/G CLIP-projector head) and for dense
prediction (``out_indices`` of pre-downsample stage outputs as NCHW tensors, what FPNs consume).
Submodule names equal upstream's so released checkpoints load without renaming (see
``interndrive.common.checkpoint``).

Imports torch and dcnv3 only (dcnv3 lazily, when a model is built): no mmcv/mmdet here; the
OpenMMLab registration lives in ``interndrive.common.openmmlab``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.utils.checkpoint as torch_checkpoint
from torch import nn

from .layers import (
    AttentionPoolingBlock,
    DownsampleLayer,
    DropPath,
    MLPLayer,
    StemLayer,
    build_act_layer,
    build_norm_layer,
)

__all__ = ['InternImage', 'InternImageBlock', 'InternImageLayer', 'resolve_core_op']

logger = logging.getLogger(__name__)

CORE_OPS = ('DCNv3', 'DCNv3_pytorch')
_warned_fallback = False


def resolve_core_op(core_op: str | type[nn.Module]) -> type[nn.Module]:
    """Map a ``core_op`` name to the DCNv3 module class.

    ``'DCNv3'`` is the compiled operator; when ``dcnv3`` was installed without compiled kernels it
    falls back to the pure-PyTorch ``DCNv3_pytorch`` (same parameters, same math) and warns once per
    process, so configs written for GPUs still run on a laptop. A class is returned unchanged
    (custom operators with the DCNv3 constructor signature).
    """
    if isinstance(core_op, type) and issubclass(core_op, nn.Module):
        return core_op
    if core_op not in CORE_OPS:
        raise ValueError(
            f'InternImage: core_op must be one of {CORE_OPS} or an nn.Module class, got {core_op!r}'
        )
    import dcnv3  # lazy: importing the backbone module must not need the operator package

    if core_op == 'DCNv3_pytorch':
        return dcnv3.DCNv3_pytorch
    if dcnv3.has_compiled_ops():
        return dcnv3.DCNv3
    global _warned_fallback
    if not _warned_fallback:
        warnings.warn(
            "InternImage: core_op='DCNv3' requested but the dcnv3 package has no compiled kernels; "
            'using the pure-PyTorch reference DCNv3_pytorch (identical parameters, slower).',
            RuntimeWarning,
            stacklevel=3,
        )
        _warned_fallback = True
    return dcnv3.DCNv3_pytorch


class InternImageLayer(nn.Module):
    """One InternImage block: DCNv3 token mixer and MLP, each in a residual branch.

    Args:
        core_op: DCNv3 module class.
        channels: width of this stage.
        groups: DCNv3 groups.
        mlp_ratio: MLP hidden width / channels.
        drop: dropout inside the MLP.
        drop_path: stochastic-depth probability of both residual branches.
        act_layer: activation name.
        norm_layer: norm inside DCNv3's offset branch (``'LN'``/``'BN'``); block norms are always LN.
        post_norm: normalize the branch output (``x + norm(f(x))``) instead of its input.
        layer_scale: initial value of the per-channel ``gamma1/gamma2`` scales; ``None`` disables them.
        offset_scale: DCNv3 offset scale.
        with_cp: recompute the block in backward (``torch.utils.checkpoint``) to save memory.
        dw_kernel_size: depthwise kernel of DCNv3's offset branch (None = 3; 5 for H/G).
        res_post_norm: H-style ``x + res_post_norm(f(norm(x)))`` (only without layer scale).
        center_feature_scale: DCNv3 center-feature scaling (H/G).
        remove_center: DCNv3 without the center sampling point.
    """

    def __init__(
        self,
        core_op: type[nn.Module],
        channels: int,
        groups: int,
        mlp_ratio: float = 4.0,
        drop: float = 0.0,
        drop_path: float = 0.0,
        act_layer: str = 'GELU',
        norm_layer: str = 'LN',
        post_norm: bool = False,
        layer_scale: float | None = None,
        offset_scale: float = 1.0,
        with_cp: bool = False,
        dw_kernel_size: int | None = None,
        res_post_norm: bool = False,
        center_feature_scale: bool = False,
        remove_center: bool = False,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.groups = groups
        self.with_cp = with_cp
        self.post_norm = post_norm
        self.norm1 = build_norm_layer(channels, 'LN')
        self.dcn = core_op(
            channels=channels,
            kernel_size=3,
            dw_kernel_size=dw_kernel_size,
            stride=1,
            pad=1,
            dilation=1,
            group=groups,
            offset_scale=offset_scale,
            act_layer=act_layer,
            norm_layer=norm_layer,
            center_feature_scale=center_feature_scale,
            remove_center=remove_center,
        )
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = build_norm_layer(channels, 'LN')
        self.mlp = MLPLayer(channels, int(channels * mlp_ratio), act_layer=act_layer, drop=drop)
        self.layer_scale = layer_scale is not None
        if self.layer_scale:
            self.gamma1 = nn.Parameter(layer_scale * torch.ones(channels))
            self.gamma2 = nn.Parameter(layer_scale * torch.ones(channels))
        self.res_post_norm = res_post_norm
        if res_post_norm:
            self.res_post_norm1 = build_norm_layer(channels, 'LN')
            self.res_post_norm2 = build_norm_layer(channels, 'LN')

    def _inner_forward(self, x: torch.Tensor) -> torch.Tensor:
        # The residual variants and their precedence are upstream's: layer scale decides first,
        # then post_norm, then res_post_norm (H), else pre-norm (T).
        dp = self.drop_path
        if self.layer_scale:
            if self.post_norm:
                x = x + dp(self.gamma1 * self.norm1(self.dcn(x)))
                return x + dp(self.gamma2 * self.norm2(self.mlp(x)))
            x = x + dp(self.gamma1 * self.dcn(self.norm1(x)))
            return x + dp(self.gamma2 * self.mlp(self.norm2(x)))
        if self.post_norm:
            x = x + dp(self.norm1(self.dcn(x)))
            return x + dp(self.norm2(self.mlp(x)))
        if self.res_post_norm:
            x = x + dp(self.res_post_norm1(self.dcn(self.norm1(x))))
            return x + dp(self.res_post_norm2(self.mlp(self.norm2(x))))
        x = x + dp(self.dcn(self.norm1(x)))
        return x + dp(self.mlp(self.norm2(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, H, W, C) -> (N, H, W, C)."""
        if self.with_cp and x.requires_grad and torch.is_grad_enabled():
            return torch_checkpoint.checkpoint(self._inner_forward, x, use_reentrant=False)
        return self._inner_forward(x)


class InternImageBlock(nn.Module):
    """One stage (upstream calls it a level): ``depth`` layers, optional norms, optional downsample.

    Args:
        core_op: DCNv3 module class.
        channels: width of this stage.
        depth: number of layers.
        groups: DCNv3 groups.
        downsample: append a stride-2 DownsampleLayer (all but the last stage).
        mlp_ratio, drop, act_layer, norm_layer, post_norm, layer_scale, offset_scale, with_cp,
        dw_kernel_size, res_post_norm, center_feature_scale, remove_center: see InternImageLayer.
        drop_path: one rate for all layers or a per-layer list.
        post_norm_block_ids: layer indices followed by an extra LayerNorm (InternImage-H/G, stage 2).
    """

    def __init__(
        self,
        core_op: type[nn.Module],
        channels: int,
        depth: int,
        groups: int,
        downsample: bool = True,
        mlp_ratio: float = 4.0,
        drop: float = 0.0,
        drop_path: float | Sequence[float] = 0.0,
        act_layer: str = 'GELU',
        norm_layer: str = 'LN',
        post_norm: bool = False,
        offset_scale: float = 1.0,
        layer_scale: float | None = None,
        with_cp: bool = False,
        dw_kernel_size: int | None = None,
        post_norm_block_ids: Sequence[int] | None = None,
        res_post_norm: bool = False,
        center_feature_scale: bool = False,
        remove_center: bool = False,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.depth = depth
        self.post_norm = post_norm
        self.center_feature_scale = center_feature_scale
        rates = list(drop_path) if isinstance(drop_path, Sequence) else [drop_path] * depth
        self.blocks = nn.ModuleList(
            InternImageLayer(
                core_op=core_op,
                channels=channels,
                groups=groups,
                mlp_ratio=mlp_ratio,
                drop=drop,
                drop_path=rates[i],
                act_layer=act_layer,
                norm_layer=norm_layer,
                post_norm=post_norm,
                layer_scale=layer_scale,
                offset_scale=offset_scale,
                with_cp=with_cp,
                dw_kernel_size=dw_kernel_size,
                res_post_norm=res_post_norm,
                center_feature_scale=center_feature_scale,
                remove_center=remove_center,
            )
            for i in range(depth)
        )
        # Post-norm stages already end in a norm; upstream still adds one for H/G
        # (center_feature_scale), and checkpoints contain it, so keep the exact condition.
        self.has_stage_norm = not post_norm or center_feature_scale
        if self.has_stage_norm:
            self.norm = build_norm_layer(channels, 'LN')
        self.post_norm_block_ids = (
            list(post_norm_block_ids) if post_norm_block_ids is not None else None
        )
        if self.post_norm_block_ids is not None:
            self.post_norms = nn.ModuleList(
                build_norm_layer(channels, 'LN') for _ in self.post_norm_block_ids
            )
        self.downsample = DownsampleLayer(channels, norm_layer=norm_layer) if downsample else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, H, W, C) -> (downsampled output or the stage output, stage output before downsampling)."""
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if self.post_norm_block_ids is not None and i in self.post_norm_block_ids:
                x = self.post_norms[self.post_norm_block_ids.index(i)](x)
        if self.has_stage_norm:
            x = self.norm(x)
        pre_downsample = x
        if self.downsample is not None:
            x = self.downsample(x)
        return x, pre_downsample


class InternImage(nn.Module):
    """InternImage backbone / classifier.

    Args:
        core_op: ``'DCNv3'`` (compiled op, falls back to the reference with one warning when not
            compiled), ``'DCNv3_pytorch'`` (pure-PyTorch reference) or a DCNv3-compatible module class.
        channels: width C of the first stage; stage i has C·2^i channels.
        depths: layers per stage.
        groups: DCNv3 groups per stage.
        num_classes: 0 builds a headless backbone whose ``forward`` returns the ``out_indices`` stage
            outputs; >0 builds the classification head (conv head for T–XL, CLIP projector when
            ``use_clip_projector``) and ``forward`` returns logits.
        mlp_ratio: MLP hidden width / channels.
        drop_rate: dropout in the MLPs and after the stem.
        drop_path_rate: stochastic depth of the last block.
        drop_path_type: ``'linear'`` (0 → rate over all blocks) or ``'uniform'`` (rate everywhere).
        act_layer: activation name (``'GELU'``).
        norm_layer: ``'LN'`` or ``'BN'`` for stem, downsample and DCNv3 offset branch.
        layer_scale: initial per-channel residual scale, ``None`` to disable.
        offset_scale: DCNv3 offset scale.
        post_norm: post-norm residual branches (S/B/L/XL).
        cls_scale: conv-head width multiplier.
        with_cp: gradient checkpointing of every block.
        dw_kernel_size: DCNv3 offset-branch depthwise kernel (5 for H/G).
        use_clip_projector: H/G attention-pooling head (only with ``num_classes > 0``).
        level2_post_norm: enable the extra norms after ``level2_post_norm_block_ids`` in stage 2.
        level2_post_norm_block_ids: stage-2 layer indices followed by a LayerNorm.
        res_post_norm: H-style residual post norms.
        center_feature_scale: DCNv3 center-feature scaling (H/G).
        remove_center: DCNv3 without the center point.
        out_indices: stages whose pre-downsample output ``forward`` returns in backbone mode.
        frozen_stages: -1 trains everything; 0 freezes the stem; k ≥ 1 also freezes stages 0..k-1
            (parameters get ``requires_grad=False`` and the frozen parts stay in eval mode).
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH_OR_URL[, prefix=...])`` loads weights in
            ``init_weights()`` (the mmengine convention); other types are rejected.
        in_chans: image channels.
    """

    def __init__(
        self,
        core_op: str | type[nn.Module] = 'DCNv3',
        channels: int = 64,
        depths: Sequence[int] = (4, 4, 18, 4),
        groups: Sequence[int] = (4, 8, 16, 32),
        num_classes: int = 0,
        mlp_ratio: float = 4.0,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.2,
        drop_path_type: str = 'linear',
        act_layer: str = 'GELU',
        norm_layer: str = 'LN',
        layer_scale: float | None = None,
        offset_scale: float = 1.0,
        post_norm: bool = False,
        cls_scale: float = 1.5,
        with_cp: bool = False,
        dw_kernel_size: int | None = None,
        use_clip_projector: bool = False,
        level2_post_norm: bool = False,
        level2_post_norm_block_ids: Sequence[int] | None = None,
        res_post_norm: bool = False,
        center_feature_scale: bool = False,
        remove_center: bool = False,
        out_indices: Sequence[int] = (0, 1, 2, 3),
        frozen_stages: int = -1,
        init_cfg: dict[str, Any] | None = None,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        depths, groups = list(depths), list(groups)
        self._check_args(channels, depths, groups, drop_path_type, out_indices, frozen_stages)
        if level2_post_norm and level2_post_norm_block_ids is not None:
            bad = [i for i in level2_post_norm_block_ids if not 0 <= i < depths[2]]
            if bad:
                raise ValueError(
                    f'InternImage: level2_post_norm_block_ids {bad} outside stage 2 (depth {depths[2]})'
                )
        self.core_op = core_op
        self.core_op_cls = resolve_core_op(core_op)
        self.num_classes = num_classes
        self.num_levels = len(depths)
        self.depths = depths
        self.groups = groups
        self.channels = channels
        self.num_features = int(channels * 2 ** (self.num_levels - 1))
        self.stage_channels = [int(channels * 2**i) for i in range(self.num_levels)]
        self.post_norm = post_norm
        self.mlp_ratio = mlp_ratio
        self.use_clip_projector = use_clip_projector
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.init_cfg = init_cfg

        self.patch_embed = StemLayer(in_chans, channels, act_layer=act_layer, norm_layer=norm_layer)
        self.pos_drop = nn.Dropout(p=drop_rate)

        if drop_path_type == 'uniform':
            dpr = [drop_path_rate] * sum(depths)
        else:
            dpr = torch.linspace(0, drop_path_rate, sum(depths), device='cpu').tolist()

        self.levels = nn.ModuleList()
        for i in range(self.num_levels):
            ids = level2_post_norm_block_ids if level2_post_norm and i == 2 else None
            self.levels.append(
                InternImageBlock(
                    core_op=self.core_op_cls,
                    channels=self.stage_channels[i],
                    depth=depths[i],
                    groups=groups[i],
                    downsample=i < self.num_levels - 1,
                    mlp_ratio=mlp_ratio,
                    drop=drop_rate,
                    drop_path=dpr[sum(depths[:i]) : sum(depths[: i + 1])],
                    act_layer=act_layer,
                    norm_layer=norm_layer,
                    post_norm=post_norm,
                    offset_scale=offset_scale,
                    layer_scale=layer_scale,
                    with_cp=with_cp,
                    dw_kernel_size=dw_kernel_size,
                    post_norm_block_ids=ids,
                    res_post_norm=res_post_norm,
                    center_feature_scale=center_feature_scale,
                    remove_center=remove_center,
                )
            )

        if num_classes > 0 and not use_clip_projector:
            head_dim = int(self.num_features * cls_scale)
            self.conv_head = nn.Sequential(
                nn.Conv2d(self.num_features, head_dim, kernel_size=1, bias=False),
                build_norm_layer(head_dim, 'BN', 'channels_first', 'channels_first'),
                build_act_layer(act_layer),
            )
            self.head = nn.Linear(head_dim, num_classes)
        elif num_classes > 0:
            # CLIP-projector head of H/G: stage-3 map upsampled ×2 by PixelShuffle plus stage-2 map,
            # attention-pooled to the 768-d CLIP embedding (constants as upstream).
            embed_dim, stride, heads, clip_dim = 1024, 2, 16, 768
            self.dcnv3_head_x4 = nn.Sequential(
                nn.Conv2d(self.num_features, embed_dim * stride**2, kernel_size=1),
                nn.PixelShuffle(stride),
            )
            self.dcnv3_head_x3 = nn.Conv2d(self.num_features // 2, embed_dim, kernel_size=1)
            self.clip_projector = AttentionPoolingBlock(
                embed_dim, heads, qkv_bias=True, norm_layer=norm_layer, out_dim=clip_dim
            )
            self.fc_norm = build_norm_layer(clip_dim, norm_layer, eps=1e-6)
            self.head = nn.Linear(clip_dim, num_classes)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))

        self.reset_parameters()
        self._freeze_stages()

    @staticmethod
    def _check_args(
        channels: int,
        depths: list[int],
        groups: list[int],
        drop_path_type: str,
        out_indices: Sequence[int],
        frozen_stages: int,
    ) -> None:
        if len(depths) != len(groups):
            raise ValueError(
                f'InternImage: depths {depths} and groups {groups} must have the same length'
            )
        for i, g in enumerate(groups):
            width = channels * 2**i
            if g <= 0 or width % g:
                raise ValueError(
                    f'InternImage: stage {i} has {width} channels, not divisible by groups[{i}]={g}'
                )
        if drop_path_type not in ('linear', 'uniform'):
            raise ValueError(
                f"InternImage: drop_path_type must be 'linear' or 'uniform', got {drop_path_type!r}"
            )
        bad = [i for i in out_indices if not 0 <= i < len(depths)]
        if bad or not out_indices:
            raise ValueError(
                f'InternImage: out_indices {tuple(out_indices)} must be non-empty stage ids in 0..{len(depths) - 1}'
            )
        if not -1 <= frozen_stages <= len(depths):
            raise ValueError(
                f'InternImage: frozen_stages must be in -1..{len(depths)}, got {frozen_stages}'
            )

    # ------------------------------------------------------------------ init / loading
    def reset_parameters(self) -> None:
        """Upstream initialisation: trunc-normal Linear, unit LayerNorm, then DCNv3's own reset."""

        def _init(m: nn.Module) -> None:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

        self.apply(_init)
        # DCNv3 zero-initialises offsets and mask logits (a plain 3×3 average at init); the generic
        # Linear init above must not override that.
        for m in self.modules():
            if isinstance(m, self.core_op_cls) and hasattr(m, '_reset_parameters'):
                m._reset_parameters()

    def init_weights(self) -> None:
        """Apply ``init_cfg`` (mmengine convention, called by runners after building the model)."""
        cfg = self.init_cfg
        if cfg is None:
            return
        if cfg.get('type') != 'Pretrained' or 'checkpoint' not in cfg:
            raise ValueError(
                f"InternImage: init_cfg must be dict(type='Pretrained', checkpoint=...), got {cfg!r}"
            )
        from ..checkpoint import load_internimage_checkpoint

        report = load_internimage_checkpoint(
            self, cfg['checkpoint'], strict=False, map_location='cpu', prefix=cfg.get('prefix')
        )
        logger.info('InternImage init_weights: %s', report.summary())
        # mmengine's BaseModule skips children that are already initialised.
        self.is_init = True

    # ------------------------------------------------------------------ freezing
    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        frozen: list[nn.Module] = [self.patch_embed, *self.levels[: self.frozen_stages]]
        for module in frozen:
            module.eval()
            for p in module.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True) -> InternImage:
        super().train(mode)
        self._freeze_stages()  # keep frozen BN/dropout in eval mode
        return self

    # ------------------------------------------------------------------ forward
    def _stage_outputs(
        self, x: torch.Tensor, take: set[int], stop: int
    ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        x = self.pos_drop(self.patch_embed(x))
        outs: dict[int, torch.Tensor] = {}
        for i, level in enumerate(self.levels[: stop + 1]):
            x, pre = level(x)
            if i in take:
                outs[i] = pre
        return x, outs

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        output_fmt: str = 'NCHW',
        stop_early: bool = False,
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Stage outputs before downsampling (timm-style API).

        Args:
            x: images (N, 3, H, W).
            indices: stage ids, an int n for the last n stages, or None for ``out_indices``.
            output_fmt: ``'NCHW'`` (contiguous) or ``'NHWC'``.
            stop_early: skip the stages after the last requested one (only with ``intermediates_only``).
            intermediates_only: return only the list.

        Returns:
            The list of requested stage outputs, or ``(final_features, list)`` where
            ``final_features`` is the last stage's output in ``output_fmt``.
        """
        if output_fmt not in ('NCHW', 'NHWC'):
            raise ValueError(
                f"forward_intermediates: output_fmt must be 'NCHW' or 'NHWC', got {output_fmt!r}"
            )
        if x.ndim != 4:
            raise ValueError(f'InternImage expects images (N, C, H, W), got shape {tuple(x.shape)}')
        if indices is None:
            idx = list(self.out_indices)
        elif isinstance(indices, int):
            idx = list(range(self.num_levels - indices, self.num_levels))
        else:
            idx = list(indices)
        if not idx or any(not 0 <= i < self.num_levels for i in idx):
            raise ValueError(
                f'forward_intermediates: indices {indices} must select stages in 0..{self.num_levels - 1}'
            )
        stop = max(idx) if stop_early and intermediates_only else self.num_levels - 1
        last, outs = self._stage_outputs(x, set(idx), stop)

        def fmt(t: torch.Tensor) -> torch.Tensor:
            return t.permute(0, 3, 1, 2).contiguous() if output_fmt == 'NCHW' else t

        intermediates = [fmt(outs[i]) for i in idx]
        if intermediates_only:
            return intermediates
        return fmt(last), intermediates

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Unpooled features (NCHW): the last stage's output, or for the CLIP-projector head the
        fused stage-2/3 map (N, 1024, H/16, W/16) that the attention pooling consumes."""
        if self.num_classes > 0 and self.use_clip_projector:
            _, (s2, s3) = self.forward_intermediates(x, indices=(2, 3))
            return self.dcnv3_head_x4(s3) + self.dcnv3_head_x3(s2)
        last, _ = self._stage_outputs(x, set(), self.num_levels - 1)
        return last.permute(0, 3, 1, 2)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool ``forward_features`` output and classify (or return the pooled embedding)."""
        if self.num_classes <= 0:
            raise RuntimeError(
                'InternImage.forward_head: the model was built with num_classes=0 (no head)'
            )
        if self.use_clip_projector:
            tokens = x.flatten(2).transpose(1, 2).contiguous()
            x = self.fc_norm(self.clip_projector(tokens))
        else:
            x = torch.flatten(self.avgpool(self.conv_head(x)), 1)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Logits (N, num_classes) with a head; else the ``out_indices`` stage outputs (NCHW)."""
        if self.num_classes > 0:
            return self.forward_head(self.forward_features(x))
        return self.forward_intermediates(x, intermediates_only=True, stop_early=True)

    # ------------------------------------------------------------------ misc
    def lr_decay_keywords(self, decay_ratio: float = 0.87) -> dict[str, float]:
        """Upstream classification fine-tuning lr ratios by parameter-name prefix (last block = 1)."""
        ratios: dict[str, float] = {}
        idx = 0
        for level in reversed(range(self.num_levels)):
            for j in reversed(range(self.depths[level])):
                ratios[f'levels.{level}.blocks.{j}.'] = decay_ratio**idx
                idx += 1
        ratios['patch_embed'] = ratios['levels.0.blocks.0.']
        for level in range(self.num_levels - 1):
            nxt = ratios[f'levels.{level + 1}.blocks.0.']
            ratios[f'levels.{level}.downsample'] = nxt
            ratios[f'levels.{level}.norm'] = nxt
        return ratios
