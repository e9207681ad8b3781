"""BEVFormer encoder layers shared by the occupancy and OpenLane-V2 tasks.

Importing this package registers, in mmengine's root `MODELS` registry (visible from the mmdet and
mmdet3d scopes), `BEVFormerConstructer`, `BEVFormerEncoder`, `BEVFormerLayer`,
`TemporalSelfAttention`, `SpatialCrossAttention` and `MSDeformableAttention3D`, so task configs can
say `type='BEVFormerConstructer'` etc. See `common/docs/bev.md`.
"""

from .checkpoint_keys import UPSTREAM_BEV_PREFIXES, extract_bev_constructor_state_dict
from .constructor import BEVFormerConstructer
from .deformable_attention_3d import MSDeformableAttention3D
from .deformable_sampling import multi_scale_deformable_attention
from .encoder import BEVFormerEncoder, BEVFormerLayer
from .geometry import (
    bev_reference_points_2d,
    bev_reference_points_3d,
    ego_motion_bev_shift,
    project_to_cameras,
    rotate_bev,
)
from .img_metas import can_bus_from_metas, image_size_from_metas, lidar2img_from_metas
from .positional_encoding import BEVLearnedPositionalEncoding
from .spatial_cross_attention import SpatialCrossAttention, rebatch_indices
from .temporal import BEVHistory, relative_can_bus
from .temporal_self_attention import TemporalSelfAttention

__all__ = [
    'UPSTREAM_BEV_PREFIXES',
    'BEVFormerConstructer',
    'BEVFormerEncoder',
    'BEVFormerLayer',
    'BEVHistory',
    'BEVLearnedPositionalEncoding',
    'MSDeformableAttention3D',
    'SpatialCrossAttention',
    'TemporalSelfAttention',
    'bev_reference_points_2d',
    'bev_reference_points_3d',
    'can_bus_from_metas',
    'ego_motion_bev_shift',
    'extract_bev_constructor_state_dict',
    'image_size_from_metas',
    'lidar2img_from_metas',
    'multi_scale_deformable_attention',
    'project_to_cameras',
    'rebatch_indices',
    'relative_can_bus',
    'rotate_bev',
]
