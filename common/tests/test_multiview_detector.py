"""Shared pieces of the multi-camera detectors (`interndrive.common.multiview_detector`)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from interndrive.common.multiview_detector import (
    count_parameters_per_part,
    multiview_features,
    sample_metainfo,
    stack_images,
)


class _Sample:
    def __init__(self) -> None:
        self.metainfo = {'token': 'a'}


def test_sample_metainfo_of_data_samples_and_dicts() -> None:
    assert sample_metainfo(_Sample()) == {'token': 'a'}
    plain = {'token': 'b'}
    assert sample_metainfo(plain) is plain


def test_stack_images_tensor_list_and_errors() -> None:
    batch = torch.randn(2, 3, 3, 4, 5)
    assert stack_images({'img': batch}, 'M') is batch
    stacked = stack_images({'img': list(batch)}, 'M')
    assert torch.equal(stacked, batch)
    with pytest.raises(KeyError, match=r"Net: inputs has no 'img' \(keys: \['points'\]\)"):
        stack_images({'points': batch}, 'Net')
    with pytest.raises(ValueError, match=r'^Net: the images of one batch must share one padded'):
        stack_images({'img': [torch.zeros(3, 3, 4, 5), torch.zeros(3, 3, 4, 6)]}, 'Net')


class _Backbone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        y = self.conv(x)
        return [y, y[..., ::2, ::2]]


class _Neck(nn.Module):
    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        return [f * 2 for f in feats]


def test_multiview_features_match_one_camera_at_a_time() -> None:
    torch.manual_seed(0)
    backbone, neck = _Backbone(), _Neck()
    images = torch.randn(2, 3, 3, 8, 10)  # B=2, N=3 cameras
    levels = multiview_features(images, backbone, neck)
    assert [tuple(f.shape) for f in levels] == [(2, 3, 4, 4, 5), (2, 3, 4, 2, 3)]
    for b in range(2):
        for n in range(3):
            single = neck(backbone(images[b, n][None]))
            for level, ref in zip(levels, single, strict=True):
                torch.testing.assert_close(level[b, n], ref[0])
    seen = []
    masked = multiview_features(
        images, backbone, neck, augment=lambda x: seen.append(x.shape) or x * 0
    )
    assert seen == [torch.Size([6, 3, 8, 10])]  # augment sees the B·N batch
    torch.testing.assert_close(
        masked[0], (2 * backbone.conv.bias).view(1, 1, 4, 1, 1).expand(2, 3, 4, 4, 5)
    )


def test_count_parameters_per_part() -> None:
    model = nn.Sequential()
    model.add_module('backbone', nn.Linear(3, 4))  # 16
    model.add_module('act', nn.ReLU())  # parameter-free: left out
    model.add_module('head', nn.Linear(4, 2, bias=False))  # 8
    assert count_parameters_per_part(model) == {'backbone': 16, 'head': 8, 'total': 24}
    assert count_parameters_per_part(nn.ReLU()) == {'total': 0}
