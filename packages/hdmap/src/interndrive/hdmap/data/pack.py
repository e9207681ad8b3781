"""`HDMapPackInputs`: the last transform, results dict → `inputs` + a `BaseDataElement` (OpenMMLab adapter).

mmengine's default `pseudo_collate` keeps data elements as a list and images as a list of tensors, which
`VectorMapNet` stacks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet3d.registry import TRANSFORMS
from mmengine.structures import BaseDataElement

from .transforms import stack_views

META_KEYS = ('token', 'segment_id', 'img_shape', 'pad_shape', 'scale_factor', 'sample_idx')


@TRANSFORMS.register_module()
class HDMapPackInputs(BaseTransform):
    """`img` → `inputs['img']` (7, 3, H, W) float32; metainfo: token, segment_id, shapes, `ego2img`
    (7, 4, 4) float32 of the padded images; data: `gt_polys` (`polys`, None without lines) if present."""

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        meta = {k: results[k] for k in META_KEYS if k in results}
        meta['ego2img'] = np.stack([np.asarray(m, dtype=np.float32) for m in results['ego2img']])
        sample = BaseDataElement(metainfo=meta)
        if 'polys' in results:
            sample.gt_polys = results['polys']
        return {'inputs': {'img': torch.from_numpy(stack_views(results))}, 'data_samples': sample}
