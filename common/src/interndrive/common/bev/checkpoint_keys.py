"""Where the BEV constructor's weights live in upstream task checkpoints, and how to extract them.

Upstream occupancy (`BEVFormerOcc`) splits the constructor's parameters between the head
(`bev_embedding`, `positional_encoding`) and `TransformerOcc` (`level_embeds`, `cams_embeds`,
`can_bus_mlp`, `encoder`); upstream OpenLane-V2 keeps them together under `bev_constructor.`.
Below those prefixes the names are identical to ours (mmcv 1.x and 2.x transformer bricks use the
same `attentions/ffns/norms` layout), so a key rename is all a conversion needs.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

# upstream prefix -> our prefix, per upstream task layout.
UPSTREAM_BEV_PREFIXES: dict[str, dict[str, str]] = {
    'occupancy': {
        'pts_bbox_head.bev_embedding.': 'bev_embedding.',
        'pts_bbox_head.positional_encoding.': 'positional_encoding.',
        'pts_bbox_head.transformer.level_embeds': 'level_embeds',
        'pts_bbox_head.transformer.cams_embeds': 'cams_embeds',
        'pts_bbox_head.transformer.can_bus_mlp.': 'can_bus_mlp.',
        'pts_bbox_head.transformer.encoder.': 'encoder.',
    },
    'openlane': {'bev_constructor.': ''},
}


def extract_bev_constructor_state_dict(
    state_dict: Mapping[str, Tensor], layout: str
) -> dict[str, Tensor]:
    """Picks the `BEVFormerConstructer` weights out of an upstream detector state dict.

    Args:
        state_dict: Upstream detector weights (already unwrapped from `state_dict`/`module.`).
        layout: `'occupancy'` or `'openlane'` (see `UPSTREAM_BEV_PREFIXES`).

    Returns:
        A state dict for `BEVFormerConstructer.load_state_dict`.
    """
    if layout not in UPSTREAM_BEV_PREFIXES:
        raise ValueError(f'layout must be one of {sorted(UPSTREAM_BEV_PREFIXES)}, got {layout!r}')
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        for upstream, ours in UPSTREAM_BEV_PREFIXES[layout].items():
            if key.startswith(upstream):
                out[ours + key[len(upstream) :]] = value
                break
    if not out:
        prefixes = ', '.join(UPSTREAM_BEV_PREFIXES[layout])
        raise KeyError(
            f'no BEV constructor weights found for layout {layout!r} (looked for keys starting with {prefixes})'
        )
    return out
