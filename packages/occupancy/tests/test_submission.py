"""Submission writer / validator / packer in the challenge format."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from interndrive.occupancy.constants import GRID_SHAPE
from interndrive.occupancy.errors import OccupancyDataError
from interndrive.occupancy.submission import (
    iter_submission,
    pack_submission,
    save_prediction,
    validate_submission,
)

TOKENS = [f'{i:032x}' for i in range(3)]


def _pred(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 18, GRID_SHAPE, dtype=np.uint8)


@pytest.fixture
def submission(tmp_path):
    folder = tmp_path / 'results'
    for i, token in enumerate(TOKENS):
        save_prediction(folder, token, _pred(i))
    return folder


def test_written_file_is_the_challenge_format(submission) -> None:
    with np.load(submission / f'{TOKENS[0]}.npz') as npz:
        assert npz.files == ['arr_0']  # np.savez_compressed(path, pred)
        np.testing.assert_array_equal(npz['arr_0'], _pred(0))
        assert npz['arr_0'].dtype == np.uint8


def test_valid_submission_passes_and_streams(submission, tmp_path) -> None:
    report = validate_submission(submission, TOKENS)
    assert report.ok, report.errors
    assert report.tokens == set(TOKENS)
    streamed = dict(iter_submission(submission))
    np.testing.assert_array_equal(streamed[TOKENS[2]], _pred(2))
    archive = pack_submission(submission, tmp_path / 'upload.zip')
    assert sorted(zipfile.ZipFile(archive).namelist()) == sorted(f'results/{t}.npz' for t in TOKENS)
    assert validate_submission(archive, TOKENS).ok
    np.testing.assert_array_equal(dict(iter_submission(archive))[TOKENS[1]], _pred(1))


def test_every_rejection_has_a_reason(submission) -> None:
    np.savez_compressed(submission / f'{"a" * 32}.npz', np.zeros((200, 200, 15), np.uint8))
    np.savez_compressed(submission / f'{"b" * 32}.npz', np.zeros(GRID_SHAPE, np.int64))
    np.savez_compressed(submission / f'{"c" * 32}.npz', np.full(GRID_SHAPE, 20, np.uint8))
    np.savez_compressed(submission / f'{"d" * 32}.npz', pred=np.zeros(GRID_SHAPE, np.uint8))
    (submission / f'{"e" * 32}.npz').write_bytes(b'garbage')
    (submission / 'notes.txt').write_text('hi')
    np.savez_compressed(submission / 'scene-1.npz', np.zeros(GRID_SHAPE, np.uint8))
    (submission / f'{TOKENS[1]}.npz').unlink()
    report = validate_submission(submission, TOKENS)
    text = '\n'.join(report.errors)
    assert 'shape (200, 200, 15), expected (200, 200, 16)' in text
    assert 'dtype int64, expected uint8' in text
    assert 'class id 20 found' in text
    assert "holds arrays ['pred']" in text
    assert 'not a readable .npz' in text
    assert 'notes.txt: not a .npz file' in text
    assert 'scene-1.npz: file name must be <sample_token>.npz' in text
    assert f'missing predictions for 1 sample token(s): {TOKENS[1]}' in text
    assert 'file(s) for tokens not in the split' in text
    with pytest.raises(OccupancyDataError, match='invalid submission'):
        report.raise_if_invalid()


def test_writer_refuses_bad_predictions(tmp_path) -> None:
    with pytest.raises(OccupancyDataError, match='32 lowercase hex'):
        save_prediction(tmp_path, 'scene-0001', _pred(0))
    with pytest.raises(OccupancyDataError, match='shape'):
        save_prediction(tmp_path, TOKENS[0], np.zeros((200, 200), np.uint8))
    with pytest.raises(OccupancyDataError, match='dtype float32'):
        save_prediction(tmp_path, TOKENS[0], np.zeros(GRID_SHAPE, np.float32))
    save_prediction(tmp_path, TOKENS[0], _pred(0).astype(np.int64))  # ints in range are converted
    assert validate_submission(tmp_path, TOKENS[:1]).ok


def test_missing_submission_and_missing_token(tmp_path, submission) -> None:
    with pytest.raises(OccupancyDataError, match='does not exist'):
        validate_submission(tmp_path / 'nothing')
    with pytest.raises(OccupancyDataError, match='no prediction for sample token'):
        list(iter_submission(submission, ['f' * 32]))
    with pytest.raises(OccupancyDataError, match=r'holds no \.npz'):
        pack_submission(tmp_path / 'empty', tmp_path / 'x.zip')


def test_evaluate_names_bad_ground_truth_arguments(tmp_path, submission) -> None:
    from interndrive.occupancy.evaluate import evaluate_submission, ground_truth_index
    from interndrive.occupancy.io_utils import atomic_json

    with pytest.raises(OccupancyDataError, match=r"split 'test': expected one of"):
        ground_truth_index(tmp_path, split='test')
    with pytest.raises(OccupancyDataError, match=r"'.*labels\.txt': expected the Occ3D data root"):
        ground_truth_index(tmp_path / 'labels.txt')
    atomic_json(tmp_path / 'annotations.json', {'train_split': [], 'scene_infos': {}})
    with pytest.raises(OccupancyDataError, match="no samples in split 'train'"):
        evaluate_submission(submission, tmp_path, split='train')


def test_index_without_split_lists_uses_the_nuscenes_splits(tmp_path) -> None:
    pytest.importorskip('nuscenes')
    from interndrive.occupancy.evaluate import ground_truth_index
    from interndrive.occupancy.io_utils import atomic_json

    scene_infos = {  # scene-0103 is in nuScenes val, scene-0061 in train
        'scene-0103': {TOKENS[0]: {'gt_path': 'gts/scene-0103/a/labels.npz'}},
        'scene-0061': {TOKENS[1]: {'gt_path': 'gts/scene-0061/b/labels.npz'}},
    }
    atomic_json(tmp_path / 'annotations.json', {'scene_infos': scene_infos})
    assert list(ground_truth_index(tmp_path, split='val')) == [TOKENS[0]]
    assert list(ground_truth_index(tmp_path, split='train')) == [TOKENS[1]]
    assert len(ground_truth_index(tmp_path, split='all')) == 2
