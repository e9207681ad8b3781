"""BEVFormer-Occ model: `BEVFormerOcc` (registered in mmdet3d's MODELS), GridMask, voxel decoder."""
