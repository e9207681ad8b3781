"""AV2 raw log → challenge annotations, on a generated log in the av2 schema and on the real sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('av2.map.map_api', reason='the av2 package (and a numpy-compatible pyarrow)')

from interndrive.hdmap.annotations import validate_annotations
from interndrive.hdmap.convert_av2 import convert_log, convert_logs, find_logs
from interndrive.hdmap.synthetic import generate_av2_log


@pytest.fixture(scope='module')
def synthetic_log(tmp_path_factory):
    return generate_av2_log(tmp_path_factory.mktemp('av2'), num_poses=21)


def test_generated_log_converts_to_the_expected_elements(synthetic_log):
    frames = convert_log(synthetic_log)
    assert len(frames) == 5  # 2 s of poses at one frame every 0.5 s
    assert validate_annotations({synthetic_log.name: frames}).ok
    ann = frames[0]['annotation']
    ego_y = frames[0]['pose']['ego2global_translation'][1] - 2000.0
    # Two painted lines (dashed white, solid yellow); the unpainted outer lane borders are no dividers,
    # the boundary shared by two lanes is kept once and the 12 lane pieces are merged per line.
    assert len(ann['divider']) == 2
    for line, y in zip(sorted(ann['divider'], key=lambda v: v[0][1]), (-1.75, 1.75)):
        arr = np.asarray(line)
        assert np.ptp(arr[:, 0]) == pytest.approx(60.0, abs=0.01)  # clipped to the ROI
        assert np.abs(arr[:, 1] - (y - ego_y)).max() < 0.7  # small ego yaw
    # Drivable area edges at y = ±6 m; the crossing at 45 m ahead is outside the ROI.
    assert len(ann['boundary']) == 2
    assert len(ann['ped_crossing']) == 1
    ring = np.asarray(ann['ped_crossing'][0])
    assert len(ring) == 5 and np.allclose(ring[0], ring[-1])
    assert np.ptp(ring[:, 0]) == pytest.approx(4.0, abs=0.2)


def test_visibility_marks_points_cameras_see(synthetic_log):
    line = np.asarray(convert_log(synthetic_log, max_frames=1)[0]['annotation']['divider'][0])
    assert set(np.unique(line[:, 3])) <= {0.0, 1.0}
    assert line[np.argmax(np.abs(line[:, 0])), 3] == 1.0  # 30 m away: in view
    under_car = np.abs(line[:, 0]) < 1.5
    assert under_car.any() and np.all(line[under_car, 3] == 0.0)  # below the roof cameras


def test_frames_and_images_paths(synthetic_log):
    frames = convert_log(synthetic_log, interval_s=1.0, max_frames=2)
    assert [int(f['timestamp']) - int(frames[0]['timestamp']) for f in frames] == [0, 1_000_000_000]
    cam = frames[1]['sensor']['ring_front_center']
    assert (
        cam['image_path']
        == f'{synthetic_log.name}/sensors/cameras/ring_front_center/{frames[1]["timestamp"]}.jpg'
    )


def test_log_with_images_uses_front_camera_frames_and_nearest_images(tmp_path):
    log = generate_av2_log(tmp_path, num_poses=11, images=True, image_scale=0.05)
    frames = convert_log(log, interval_s=0.5)
    # Front-centre images at 20 Hz over 1 s, thinned to 2 Hz: 3 frames on the front camera's clock.
    assert len(frames) == 3
    t0 = int(frames[0]['timestamp'])
    assert [int(f['timestamp']) - t0 for f in frames] == [0, 500_000_000, 1_000_000_000]
    for f in frames:
        for cam in ('ring_front_center', 'ring_front_left', 'ring_rear_right'):
            path = tmp_path / f['sensor'][cam]['image_path']
            assert path.is_file()
        # Each camera's nearest image is a few ms after the frame time.
        left = int(Path(f['sensor']['ring_front_left']['image_path']).stem)
        assert left - int(f['timestamp']) == 3_000_000
    assert frames[0]['sensor']['ring_front_center']['intrinsic'][0][2] == pytest.approx(
        1550 * 0.05 / 2, abs=1
    )


def test_bad_paths_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='neither an AV2 log'):
        find_logs([tmp_path])
    with pytest.raises(FileNotFoundError, match='no such folder'):
        find_logs([tmp_path / 'absent'])
    (tmp_path / 'log' / 'map').mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r'city_SE3_egovehicle\.feather'):
        convert_log(tmp_path / 'log')


@pytest.mark.realdata
def test_real_log(av2_log):
    ann = convert_logs([av2_log.parent], max_frames=3)
    report = validate_annotations(ann)
    assert report.ok and not report.warnings
    frames = ann[av2_log.name]
    assert len(frames) == 3
    for f in frames:
        counts = {c: len(v) for c, v in f['annotation'].items()}
        assert counts['divider'] >= 1 and counts['boundary'] >= 1, counts
        k = np.asarray(f['sensor']['ring_front_center']['intrinsic'])
        assert k[0, 0] == pytest.approx(1776.04, abs=0.01)  # from calibration/intrinsics.feather
    t = [int(f['timestamp']) for f in frames]
    assert t[0] == 315966253572412942 and np.all(np.diff(t) >= 0.49e9)
