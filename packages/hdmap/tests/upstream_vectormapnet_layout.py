"""Writes one of our `VectorMapNet` state dicts in upstream's checkpoint layout (test helper).

The inverse of `interndrive.hdmap.checkpoint`, written out separately from upstream's module code
(`Online-HD-Map-Construction-CVPR2023/src/models`, REFERENCE.md §4.3) so that the converter is tested
against an independent statement of upstream's key names and tensor shapes:

* `mapers/vectormapnet.py`: `backbone` (IPMEncoder), `neck` = nn.Sequential(Conv7x7 no bias, BN, ReLU,
  MaxPool, torchvision resnet18.layer1, Conv1x1 no bias), `head` (DGHead: `det_net`, `gen_net`).
* `backbones/ipm_backbone.py`: `upsample.fscale[level][block]` of UpsampleBlock(`gn`, `conv` with bias),
  `outconvs`, the persistent buffer `bev_planes` (P, ny, nx, 3) and the unused `masked_embeds`
  Embedding(len(heights), out_channels).
* `heads/map_element_detector.py` + `transformer_utils/deformable_transformer.py`: `input_proj`,
  `img_coord_embed` (of a (y, x) grid), `query_embedding`, `bbox_embedding`, the unused `label_embed`
  Embedding(num_classes, D), buffer `canvas_size`, `pre_branches.{cls,reg}` holding the same module once
  per decoder layer, `transformer.level_embeds` (1, D), `transformer.reference_points_embed`,
  `transformer.decoder.layers.i` = mmcv BaseTransformerLayer (`attentions.0.attn` nn.MultiheadAttention,
  `attentions.1` MultiScaleDeformableAttention, `ffns.0.layers.{0.0,1}`, `norms.{0,1,2}`).
* `heads/dg_head.py` + `augmentation/sythesis_det.py`: `augmentation` (NoiseSythesis) with the persistent
  buffers `canvas_size`, `shift_scale`, `scaling_size`.
* `heads/polyline_generator.py` + `detgen_utils/causal_trans.py`: `_project_to_logits`, `input_proj`,
  embeddings, buffer `canvas_size`, `decoder.layers.i` = nn.TransformerDecoderLayer (`self_attn`,
  `multihead_attn` with packed `in_proj_weight`, `linear1`, `linear2`, `norm1..3`) + `res_weight1..3` (1,).
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

# our key regex -> upstream key template, for the plain renames
TO_UPSTREAM: list[tuple[str, str]] = [
    (r'backbone\.(img_backbone|img_neck)\.(.+)', r'backbone.\1.\2'),
    (r'backbone\.upsample\.levels\.(\d+)\.(\d+)\.conv\.(.+)', r'backbone.upsample.fscale.\1.\2.conv.\3'),
    (r'backbone\.upsample\.levels\.(\d+)\.(\d+)\.norm\.(.+)', r'backbone.upsample.fscale.\1.\2.gn.\3'),
    (r'backbone\.outconv\.(.+)', r'backbone.outconvs.\1'),
    (r'neck\.stem\.([01])\.(.+)', r'neck.\1.\2'),
    (r'neck\.layer1\.(.+)', r'neck.4.\1'),
    (r'neck\.proj\.(.+)', r'neck.5.\1'),
    (r'head\.det_net\.(input_proj|query_embedding|bbox_embedding|img_coord_embed)\.(.+)', r'head.det_net.\1.\2'),
    (r'head\.det_net\.reference_points_embed\.(.+)', r'head.det_net.transformer.reference_points_embed.\1'),
    (r'head\.det_net\.layers\.(\d+)\.self_attn\.(.+)',
     r'head.det_net.transformer.decoder.layers.\1.attentions.0.attn.\2'),
    (r'head\.det_net\.layers\.(\d+)\.cross_attn\.(.+)',
     r'head.det_net.transformer.decoder.layers.\1.attentions.1.\2'),
    (r'head\.det_net\.layers\.(\d+)\.ffn\.0\.(.+)', r'head.det_net.transformer.decoder.layers.\1.ffns.0.layers.0.0.\2'),
    (r'head\.det_net\.layers\.(\d+)\.ffn\.3\.(.+)', r'head.det_net.transformer.decoder.layers.\1.ffns.0.layers.1.\2'),
    (r'head\.det_net\.layers\.(\d+)\.norms\.(\d)\.(.+)', r'head.det_net.transformer.decoder.layers.\1.norms.\2.\3'),
    (r'head\.gen_net\.(input_proj|img_coord_embed|label_embed|vertex_embed|bbox_context_embed|coord_embed|'
     r'pos_embeddings)\.(.+)', r'head.gen_net.\1.\2'),
    (r'head\.gen_net\.logits_head\.(.+)', r'head.gen_net._project_to_logits.\1'),
    (r'head\.gen_net\.layers\.(\d+)\.self_attn\.out_proj\.(.+)', r'head.gen_net.decoder.layers.\1.self_attn.out_proj.\2'),
    (r'head\.gen_net\.layers\.(\d+)\.cross_attn\.out_proj\.(.+)',
     r'head.gen_net.decoder.layers.\1.multihead_attn.out_proj.\2'),
    (r'head\.gen_net\.layers\.(\d+)\.ffn\.0\.(.+)', r'head.gen_net.decoder.layers.\1.linear1.\2'),
    (r'head\.gen_net\.layers\.(\d+)\.ffn\.3\.(.+)', r'head.gen_net.decoder.layers.\1.linear2.\2'),
    (r'head\.gen_net\.layers\.(\d+)\.(norm[123])\.(.+)', r'head.gen_net.decoder.layers.\1.\2.\3'),
]  # fmt: skip

# upstream tensors without a counterpart in our model (the converter must report them as unused)
UPSTREAM_ONLY_LEARNED = (
    'backbone.masked_embeds.weight',
    'head.det_net.label_embed.weight',
    'head.det_net.transformer.level_embeds',
)
UPSTREAM_ONLY_BUFFERS = (
    'backbone.bev_planes',
    'head.det_net.canvas_size',
    'head.gen_net.canvas_size',
    # DGHead(augmentation=True) holds NoiseSythesis, whose register_buffer()s are persistent
    'head.augmentation.canvas_size',
    'head.augmentation.shift_scale',
    'head.augmentation.scaling_size',
)


def _like(ref: Tensor, shape: tuple[int, ...], seed: int) -> Tensor:
    """A tensor for an upstream-only key: random values (meta stays meta)."""
    if ref.is_meta:
        return torch.empty(shape, device='meta')
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _plain_rename(key: str) -> str:
    for pattern, template in TO_UPSTREAM:
        match = re.fullmatch(pattern, key)
        if match:
            return match.expand(template)
    raise KeyError(f'no upstream name written down for {key}')


def to_upstream_state_dict(model: torch.nn.Module, prefix: str = '') -> dict[str, Tensor]:
    """`model.state_dict()` in upstream's layout (key names, packing and shapes), `prefix` in front.

    Args:
        model: Our `VectorMapNet` (any config, also on the meta device).
        prefix: e.g. `'module.'` for a DDP-wrapped upstream training checkpoint.
    """
    state = model.state_dict()
    det, gen, enc = model.head.det_net, model.head.gen_net, model.backbone
    num_det_layers = len(det.layers)
    out: dict[str, Tensor] = {}
    packed: dict[str, dict[str, Tensor]] = {}
    for key, value in state.items():
        m = re.fullmatch(
            r'head\.gen_net\.layers\.(\d+)\.(self_attn|cross_attn)\.([qkv])_proj\.(weight|bias)',
            key,
        )
        if m:  # nn.MultiheadAttention packs q, k, v (in that order) into in_proj_{weight,bias}
            layer, attn, qkv, kind = m.groups()
            name = {'self_attn': 'self_attn', 'cross_attn': 'multihead_attn'}[attn]
            packed.setdefault(f'head.gen_net.decoder.layers.{layer}.{name}.in_proj_{kind}', {})[
                qkv
            ] = value
            continue
        m = re.fullmatch(r'head\.gen_net\.layers\.(\d+)\.res_weights', key)
        if m:  # three (1,) ReZero parameters upstream
            for i in range(3):
                out[f'head.gen_net.decoder.layers.{m.group(1)}.res_weight{i + 1}'] = value[
                    i : i + 1
                ].clone()
            continue
        m = re.fullmatch(r'head\.det_net\.(cls|reg)_branch\.(.+)', key)
        if m:  # the same module in pre_branches once per decoder layer (iterative=False)
            kind, rest = m.groups()
            for layer in range(num_det_layers):
                out[f'head.det_net.pre_branches.{kind}.{layer}.{rest}'] = value.clone()
            continue
        upstream = _plain_rename(key)
        if upstream.endswith('img_coord_embed.weight'):
            value = value.flip(-1)  # upstream embeds a (y, x) grid
        out[upstream] = value.clone()
    for key, parts in packed.items():
        out[key] = torch.cat([parts['q'], parts['k'], parts['v']])
    # upstream-only tensors, shaped as upstream builds them
    ref = next(iter(state.values()))
    out['backbone.masked_embeds.weight'] = _like(
        ref, (len(enc.heights), enc.outconv.out_channels), 1
    )
    out['head.det_net.label_embed.weight'] = _like(ref, (det.num_classes, det.embed_dims), 2)
    out['head.det_net.transformer.level_embeds'] = _like(ref, (1, det.embed_dims), 3)
    out['backbone.bev_planes'] = enc.planes.clone()
    canvas = torch.tensor(gen.canvas_size, device=ref.device)
    out['head.det_net.canvas_size'] = canvas.clone()
    out['head.gen_net.canvas_size'] = canvas.clone()
    out['head.augmentation.canvas_size'] = canvas.clone()
    out['head.augmentation.shift_scale'] = torch.tensor([8.0, 5.0], device=ref.device)
    out['head.augmentation.scaling_size'] = torch.tensor([0.1, 0.1], device=ref.device)
    return {prefix + k: v for k, v in out.items()}
