"""PNG rendering (BEV always, cameras when images exist)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from interndrive.hdmap.annotations import load_annotations
from interndrive.hdmap.submission import write_submission
from interndrive.hdmap.synthetic import generate_dataset, generate_predictions
from interndrive.hdmap.visualize import project_to_image, render_bev, visualize_files


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('hd')
    ann_file = generate_dataset(root, num_segments=1, frames_per_segment=2, seed=1)
    ann = load_annotations(ann_file)
    sub = root / 'sub.json'
    write_submission(sub, generate_predictions(ann, num_preds=4))
    return ann_file, sub


def _colourful(path):
    img = np.asarray(Image.open(path).convert('RGB')).astype(int)
    # Class colours are present (not an empty white canvas).
    return (np.abs(img[..., 0] - img[..., 2]) > 60).mean() > 0.001


def test_bev_and_camera_pngs(dataset, tmp_path):
    ann_file, sub = dataset
    written = visualize_files(ann_file, tmp_path / 'vis', submission=sub, max_frames=1)
    assert [p.name.split('_', 1)[1] for p in written] == ['bev.png', 'cameras.png']
    for p in written:
        assert p.stat().st_size > 10_000 and _colourful(p)
    assert sorted(q.name for q in (tmp_path / 'vis').iterdir()) == sorted(p.name for p in written)


def test_no_images_gives_bev_only(dataset, tmp_path):
    ann_file, _ = dataset
    written = visualize_files(ann_file, tmp_path, image_root=tmp_path / 'nowhere', max_frames=2)
    assert [p.name.endswith('_bev.png') for p in written] == [True, True]


def test_unknown_token_is_an_error(dataset, tmp_path):
    with pytest.raises(ValueError, match='no frame with token'):
        visualize_files(dataset[0], tmp_path, tokens=['nope'])


def test_render_bev_empty_frame(tmp_path):
    assert render_bev(None, None, tmp_path / 'empty.png').stat().st_size > 5_000


def test_projection_front_camera():
    k = np.array([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]])
    ego2cam = np.array(
        [[0, -1, 0, 0], [0, 0, -1, 1.5], [1, 0, 0, 0], [0, 0, 0, 1.0]]
    )  # x fwd → z cam
    uv = project_to_image(
        np.array([[10.0, 0.0, 0.0], [-10.0, 0.0, 0.0], [10.0, 1.0, 0.0]]), k, ego2cam, (100, 80)
    )
    np.testing.assert_allclose(uv[0], [50, 40 + 100 * 1.5 / 10])
    assert np.isnan(uv[1]).all()  # behind the camera
    assert uv[2, 0] < 50  # points to the left appear left
