"""The 18-value CAN-bus vector BEVFormer attaches to every sample, from nuScenes CAN bus `pose` messages.

Layout: pos (3), orientation quaternion wxyz (4), accel (3), rotation_rate (3), vel (3), then 2 zeros
that the dataset later overwrites with the yaw in radians and degrees.

Upstream bug (REFERENCE.md Part 1 §7.16, inherited from BEVFormer's converter): pos and orientation come
from the last message at or before the sample time, but accel / rotation_rate / vel are read from the
loop variable, i.e. the *next* message. `legacy=True` reproduces that; the default reads every field from
the same (last) message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

MOTION_FIELDS = ('accel', 'rotation_rate', 'vel')  # order of the upstream files' remaining keys


def can_bus_vector(
    pose_messages: Sequence[Mapping[str, Any]], sample_timestamp: int, legacy: bool = False
) -> np.ndarray:
    """Returns the (18,) float64 CAN-bus vector of a sample.

    Args:
        pose_messages: The scene's CAN `pose` messages in time order (`NuScenesCanBus.get_messages(
            scene, 'pose')`), each with utime, pos, orientation, accel, rotation_rate, vel.
        sample_timestamp: The sample's timestamp (µs).
        legacy: Reproduce the upstream bug (motion fields from the message after the sample time).
    """
    if not pose_messages:
        return np.zeros(18)
    last = pose_messages[0]  # the first message may already be later than the first sample
    following = pose_messages[0]
    for message in pose_messages:
        following = message
        if message['utime'] > sample_timestamp:
            break
        last = message
    motion_source = following if legacy else last
    values: list[float] = [*last['pos'], *last['orientation']]
    for key in MOTION_FIELDS:
        values.extend(motion_source[key])
    values.extend([0.0, 0.0])
    vector = np.asarray(values, dtype=np.float64)
    if vector.shape != (18,):
        raise ValueError(
            f'CAN bus pose message has unexpected field sizes (got {vector.size} values)'
        )
    return vector
