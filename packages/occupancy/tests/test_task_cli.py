"""The Task plug-in: its commands (generate → convert → validate → pack), evaluate and visualize."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from interndrive.common.tasks import Task
from interndrive.occupancy.constants import GRID_SHAPE
from interndrive.occupancy.errors import OccupancyDataError
from interndrive.occupancy.formats import load_infos, load_labels
from interndrive.occupancy.io_utils import atomic_pickle
from interndrive.occupancy.submission import save_prediction
from interndrive.occupancy.task import TASK

pytest.importorskip('nuscenes')


def _commands() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='interndrive occupancy')
    TASK.add_commands(parser.add_subparsers(dest='task_command', required=True))
    return parser


def _visualize_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='interndrive visualize occupancy')
    TASK.add_visualize_arguments(parser)
    return parser


def _run(parser: argparse.ArgumentParser, *argv: str) -> int:
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_task_contract() -> None:
    assert isinstance(TASK, Task) and TASK.name == 'occupancy'
    assert TASK.config_dir.name == 'configs'
    assert TASK.reference_metrics['bevformer_intern-s_occ']['mIoU'] == 25.11
    assert TASK.reference_metrics['bevformer_base_occ']['vegetation'] == 14.46
    table = TASK.format_metrics(TASK.reference_metrics['bevformer_intern-s_occ'])
    assert '| 25.11 | 6.93 | 35.57 |' in table
    assert callable(TASK.demo) and callable(TASK.register_modules)


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp('cli')
    parser = _commands()
    assert _run(parser, 'generate', str(root), '--scenes', '2', '--samples-per-scene', '1',
                '--image-size', '64', '36') == 0  # fmt: skip
    assert _run(parser, 'convert', '--data-root', str(root), '--can-bus-root', str(root),
                '--version', 'v1.0-mini') == 0  # fmt: skip
    return root


def test_commands_and_evaluate(converted, capsys) -> None:
    root = converted
    val = load_infos(root / 'occ_infos_temporal_val.pkl')['infos']
    submission = root / 'submission'
    for info in val:
        save_prediction(
            submission, info['token'], load_labels(root / info['occ_gt_path']).semantics
        )
    parser = _commands()
    assert _run(parser, 'validate', str(submission), '--ground-truth', str(root)) == 0
    assert _run(parser, 'pack', str(submission), str(root / 'upload.zip')) == 0
    assert _run(parser, 'validate', str(root / 'upload.zip'), '--ground-truth', str(root)) == 0
    metrics = TASK.evaluate(root / 'upload.zip', root, split='val')
    assert metrics['mIoU'] == 100.0
    assert 'mIoU' in TASK.format_metrics(metrics)
    np.savez_compressed(submission / f'{val[0]["token"]}.npz', np.zeros((2, 2), np.uint8))
    capsys.readouterr()
    assert _run(parser, 'validate', str(submission), '--ground-truth', str(root)) == 1
    assert 'REJECTED' in capsys.readouterr().out
    with pytest.raises(OccupancyDataError, match='invalid submission'):
        _run(parser, 'pack', str(submission), str(root / 'bad.zip'))


def test_validate_against_test_split_infos(converted, tmp_path, capsys) -> None:
    # Test-split infos have no occ_gt_path; validation still requires every one of their tokens.
    data = load_infos(converted / 'occ_infos_temporal_val.pkl')
    for info in data['infos']:
        info['occ_gt_path'] = None
    test_infos = atomic_pickle(tmp_path / 'occ_infos_temporal_test.pkl', data)
    tokens = [info['token'] for info in data['infos']]
    (tmp_path / 'sub').mkdir()
    for token in tokens[1:]:
        save_prediction(tmp_path / 'sub', token, np.zeros(GRID_SHAPE, np.uint8))
    parser = _commands()
    capsys.readouterr()
    assert _run(parser, 'validate', str(tmp_path / 'sub'), '--ground-truth', str(test_infos)) == 1
    out = capsys.readouterr().out
    assert f'REJECTED: missing predictions for 1 sample token(s): {tokens[0]}' in out, out
    save_prediction(tmp_path / 'sub', tokens[0], np.zeros(GRID_SHAPE, np.uint8))
    assert _run(parser, 'validate', str(tmp_path / 'sub'), '--ground-truth', str(test_infos)) == 0


def test_visualize_from_infos(converted, tmp_path) -> None:
    from PIL import Image

    root = converted
    info = load_infos(root / 'occ_infos_temporal_val.pkl')['infos'][0]
    save_prediction(tmp_path / 'sub', info['token'], np.full(GRID_SHAPE, 17, np.uint8))
    args = _visualize_parser().parse_args(
        ['--info', str(root / 'occ_infos_temporal_val.pkl'), '--submission', str(tmp_path / 'sub'),
         '--token', info['token'], '--camera-mask', '--view3d', '--out-dir', str(tmp_path / 'png')]
    )  # fmt: skip
    (png,) = TASK.visualize(args)
    assert png.name == f'{info["token"]}.png'
    image = np.asarray(Image.open(png).convert('RGB'))
    assert image.shape[0] > 300 and image.shape[1] > 600
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50  # images, maps and legend were drawn
    bad = _visualize_parser().parse_args(
        ['--info', str(root / 'occ_infos_temporal_val.pkl'), '--token', 'f' * 32]
    )
    with pytest.raises(OccupancyDataError, match='is not a sample'):
        TASK.visualize(bad)
    with pytest.raises(OccupancyDataError, match='give --info'):
        TASK.visualize(_visualize_parser().parse_args([]))


@pytest.mark.realdata
@pytest.mark.slow  # six 1600x900 JPEGs through matplotlib
def test_visualize_real_frame(real_labels_path, real_nuscenes_frame, tmp_path) -> None:
    args = _visualize_parser().parse_args(
        ['--gt', str(real_labels_path), '--images-dir', str(real_nuscenes_frame), '--camera-mask',
         '--out-dir', str(tmp_path)]
    )  # fmt: skip
    (png,) = TASK.visualize(args)
    assert png.stat().st_size > 50_000
