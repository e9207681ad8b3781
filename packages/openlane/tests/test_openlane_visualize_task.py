"""PNG rendering, the `Task` plug-in and the `interndrive` CLI commands of the openlane task."""

from __future__ import annotations

import json

import numpy as np
import pytest

from interndrive.common.tasks import Task
from interndrive.openlane.convert import convert
from interndrive.openlane.formats import load_collection
from interndrive.openlane.submission import make_submission, write_submission
from interndrive.openlane.synthetic import make_predictions, write_dataset
from interndrive.openlane.task import TASK
from interndrive.openlane.visualize import render_frame


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp('olv2')
    split_file = write_dataset(root, splits={'val': 1}, frames_per_segment=2)
    (gt_path,) = convert(root, split_file, backend='builtin')
    collection = load_collection(gt_path)
    rng = np.random.default_rng(0)
    preds = {t: make_predictions(rng, f['annotation']) for t, f in collection.items()}
    sub_path = write_submission(root / 'submission.pkl', make_submission(preds))
    return root, gt_path, sub_path, collection, preds


def test_render_frame_png(converted, tmp_path):
    import matplotlib.image

    root, _, _, collection, preds = converted
    token, frame = next(iter(collection.items()))
    out = render_frame(frame, tmp_path / 'f.png', root=root, prediction=preds[token])
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    img = matplotlib.image.imread(out)
    assert img.shape[0] > 300 and img.shape[1] > 600
    assert img[..., :3].std() > 0.05  # not a blank canvas
    # Without the image files (and without predictions) it still renders, on a grey canvas.
    assert render_frame(frame, tmp_path / 'g.png').is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith('.')] == []


def test_task_object():
    assert isinstance(TASK, Task) and TASK.name == 'openlane'
    assert TASK.config_dir.name == 'configs'
    assert TASK.reference_metrics['InternImage-S (internimage-s.py)']['OLS'] == 0.325
    assert callable(TASK.demo) and callable(TASK.register_modules)


def test_task_evaluate_and_table(converted):
    _, gt_path, sub_path, _, _ = converted
    v10 = TASK.evaluate(sub_path, gt_path)
    v11 = TASK.evaluate(sub_path, gt_path, version=1.1)  # a float, as --option version=1.1 gives
    assert v10['DET_l'] == v11['DET_l'] and set(v10) == set(v11)
    assert (v10['metric_version'], v11['metric_version']) == (1.0, 1.1)
    table = TASK.format_metrics(v10)
    assert table.splitlines()[0] == '| Method | OLS | DET_l | DET_t | TOP_ll | TOP_lt | F-Score |'
    assert f'{v10["OLS"]:.3f}' in table and '0.325' in table
    # The run's row names its metric version: v1.1 TOP numbers are not comparable to the seed's v1.0.
    assert table.splitlines()[2].startswith(f'| this run, v1.0 | {v10["OLS"]:.3f} |')
    assert TASK.format_metrics(v11).splitlines()[2].startswith('| this run, v1.1 |')


@pytest.mark.slow  # imports the whole CLI (torch, mmengine): ~6 s on 2 busy cores
def test_cli_commands(converted, tmp_path, capsys):
    from interndrive.common.cli import main

    root, gt_path, sub_path, _, _ = converted
    assert main(['openlane', 'validate', str(sub_path), '--ground-truth', str(gt_path)]) == 0
    assert 'valid' in capsys.readouterr().out
    out_json = tmp_path / 'm.json'
    argv = ['evaluate', 'openlane', str(sub_path), str(gt_path), '--option', 'version=1.1']
    assert main([*argv, '--json', str(out_json)]) == 0
    assert json.loads(out_json.read_text()).keys() >= {'OLS', 'TOP_ll'}
    vis = tmp_path / 'vis'
    argv = [
        'visualize',
        'openlane',
        str(gt_path),
        '--data-root',
        str(root),
        '--submission',
        str(sub_path),
    ]
    assert main([*argv, '--out-dir', str(vis), '--num', '1']) == 0
    assert len(list(vis.glob('*.png'))) == 1
    assert main(['openlane', 'generate', str(tmp_path / 'gen'), '--no-images', '--convert']) == 0
    assert (tmp_path / 'gen' / 'data_dict_subset_A_val.pkl').is_file()


def test_cli_rejects_bad_submission(converted, tmp_path, capsys):
    from interndrive.common.cli import main

    _, gt_path, _, collection, preds = converted
    bad = make_submission(preds)
    del bad['results'][next(iter(collection))]
    path = tmp_path / 'bad.pkl'
    write_submission(path, bad)
    assert main(['openlane', 'validate', str(path), '--ground-truth', str(gt_path)]) == 1
    assert 'have no prediction' in capsys.readouterr().out
    assert main(['evaluate', 'openlane', str(path), str(gt_path)]) == 2  # one-line user error
    assert 'have no prediction' in capsys.readouterr().err


def test_cli_names_bad_evaluate_options(converted, capsys):
    from interndrive.common.cli import main

    _, gt_path, sub_path, _, _ = converted
    argv = ['evaluate', 'openlane', str(sub_path), str(gt_path)]
    assert main([*argv, '--option', 'version=2.5']) == 2
    err = capsys.readouterr().err
    assert "metric version must be one of ('1.0', '1.1')" in err and '2.5' in err
    assert 'Traceback' not in err
    assert main([*argv, '--option', 'threshold=3']) == 2
    err = capsys.readouterr().err
    assert 'unknown --option threshold' in err and 'version' in err
    # A JSON file where the collection pickle belongs: named, with what was expected.
    assert main(['evaluate', 'openlane', str(sub_path), str(gt_path.parent / 'x.json')]) == 2
    assert "ground truth '" in capsys.readouterr().err


def test_cli_validates_against_the_test_split(tmp_path, capsys):
    """The test split's pickle has no annotation; validate needs only its frame list."""
    from interndrive.common.cli import main

    split_file = write_dataset(
        tmp_path, splits={'test': 1}, frames_per_segment=2, write_images=False
    )
    (gt_path,) = convert(tmp_path, split_file, backend='builtin')
    empty = {
        'lane_centerline': [],
        'traffic_element': [],
        'topology_lclc': np.zeros((0, 0), np.float32),
        'topology_lcte': np.zeros((0, 0), np.float32),
    }
    tokens = list(load_collection(gt_path, require_annotation=False))
    sub_path = write_submission(tmp_path / 's.pkl', make_submission(dict.fromkeys(tokens, empty)))
    assert main(['openlane', 'validate', str(sub_path), '--ground-truth', str(gt_path)]) == 0
    assert 'valid' in capsys.readouterr().out
    partial = write_submission(tmp_path / 'p.pkl', make_submission({tokens[0]: empty}))
    assert main(['openlane', 'validate', str(partial), '--ground-truth', str(gt_path)]) == 1
    assert '1 ground-truth frames have no prediction' in capsys.readouterr().out


@pytest.mark.parametrize(
    ('argv', 'message'),
    [
        (['openlane', 'generate', 'out', '--image-scale', '-1'], '--image-scale: must be ≥ 0.001'),
        (['openlane', 'generate', 'out', '--frames-per-segment', '0'], 'must be ≥ 1, got 0'),
        (['openlane', 'convert', 'r', 'd.json', '--point-interval', '0'], '--point-interval'),
        (['visualize', 'openlane', 'gt.pkl', '--num', 'x'], "--num: expected int, got 'x'"),
    ],
)
def test_cli_rejects_bad_numbers(argv, message, tmp_path, monkeypatch, capsys):
    from interndrive.common.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing was written


def test_dense_ground_truth_is_warned_about(converted, tmp_path):
    """A GT built like train (all 201 points) scores 11-point predictions lower: say so."""
    import warnings

    root, gt_path, sub_path, _, _ = converted
    split_file = root / 'data_dict_subset_A.json'
    (dense,) = convert(root, split_file, out_dir=tmp_path, point_interval=1, backend='builtin')
    with pytest.warns(
        UserWarning, match=r'up to 201 points; the official val/test ground truth keeps 11'
    ):
        dense_scores = TASK.evaluate(sub_path, dense)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # the official 11-point GT: no warning
        scores = TASK.evaluate(sub_path, gt_path)
    assert dense_scores['DET_l'] < scores['DET_l']
