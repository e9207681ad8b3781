"""Test-time BEV history: CAN-bus deltas, scene changes, video_test_mode."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip('mmcv.ops', reason='the BEV layers need mmcv 2.1 built with ops')

from interndrive.common.bev import BEVHistory, relative_can_bus


def can_bus(x: float, y: float, yaw: float) -> np.ndarray:
    bus = np.zeros(18)
    bus[0:3] = x, y, 0.0
    bus[-2] = yaw
    bus[-1] = math.degrees(yaw)
    return bus


def test_relative_can_bus_keeps_current_yaw_and_zeroes_without_history() -> None:
    cur = can_bus(10.0, 5.0, 0.5)
    rel = relative_can_bus(cur, np.array([9.0, 5.5, 0.0]), math.degrees(0.3))
    assert rel[:3].tolist() == pytest.approx([1.0, -0.5, 0.0])
    assert rel[-2] == pytest.approx(0.5)  # absolute current yaw orients the shift
    assert rel[-1] == pytest.approx(math.degrees(0.2))
    first = relative_can_bus(cur, None, None)
    assert first[:3].tolist() == [0, 0, 0] and first[-1] == 0 and first[-2] == pytest.approx(0.5)
    assert cur[0] == 10.0  # input untouched
    with pytest.raises(ValueError, match='18 values'):
        relative_can_bus(np.zeros(5), None, None)


def test_history_follows_a_video_and_resets_on_scene_change() -> None:
    history = BEVHistory()
    frames = [
        ('a', can_bus(0, 0, 0.1)),
        ('a', can_bus(1, 0.5, 0.3)),
        ('b', can_bus(50, 50, 2.0)),
        ('b', can_bus(51, 50, 2.1)),
    ]
    seen = []
    for step, (token, bus) in enumerate(frames):
        metas, prev = history.prepare([dict(scene_token=token, can_bus=bus)])
        seen.append((prev, metas[0]['can_bus']))
        history.update(torch.full((1, 4, 2), float(step)))
    assert seen[0][0] is None and seen[2][0] is None  # first frame of each video
    assert torch.equal(seen[1][0], torch.zeros(1, 4, 2)) and torch.equal(
        seen[3][0], torch.full((1, 4, 2), 2.0)
    )
    assert seen[1][1][:2].tolist() == pytest.approx([1.0, 0.5])
    assert seen[1][1][-1] == pytest.approx(math.degrees(0.2))
    assert seen[2][1][:3].tolist() == [0, 0, 0] and seen[2][1][-1] == 0
    assert seen[3][1][:2].tolist() == pytest.approx([1.0, 0.0])
    assert frames[1][1][0] == 1  # caller's metadata not modified


def test_video_test_mode_off_never_uses_history_and_errors_are_clear() -> None:
    history = BEVHistory(video_test_mode=False)
    for _ in range(2):
        metas, prev = history.prepare([dict(scene_token='a', can_bus=can_bus(1, 1, 0.0))])
        assert prev is None and metas[0]['can_bus'][:3].tolist() == [0, 0, 0]
        history.update(torch.zeros(1, 4, 2))
    with pytest.raises(KeyError, match=r"img_metas\[0\] has no 'scene_token'"):
        BEVHistory().prepare([dict(can_bus=np.zeros(18))])
    with pytest.raises(RuntimeError, match='before prepare'):
        BEVHistory().update(torch.zeros(1, 4, 2))
    history = BEVHistory()
    history.prepare([dict(scene_token='a', can_bus=np.zeros(18))] * 2)
    with pytest.raises(ValueError, match='batch size 1, prepare\\(\\) saw 2'):
        history.update(torch.zeros(1, 4, 2))
