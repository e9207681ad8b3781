"""Bad input through the real `interndrive` CLI: one clear line naming the file/argument, exit status 2,
no traceback (the errors are `InterndriveError`s), for every bad-input path the issue names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interndrive.common.engine.checks import InterndriveError
from interndrive.hdmap.errors import HDMapInputError

cli = pytest.importorskip('interndrive.common.cli')


@pytest.fixture(scope='module')
def ann_file(tmp_path_factory) -> Path:
    from interndrive.hdmap.synthetic import generate_dataset

    root = tmp_path_factory.mktemp('hdmap_cli_errors')
    return generate_dataset(root, num_segments=1, frames_per_segment=2, images=False)


def _tokens(ann_file: Path) -> list[str]:
    return [f['timestamp'] for frames in json.loads(ann_file.read_text()).values() for f in frames]


def _submission(path: Path, results: dict) -> Path:
    from interndrive.hdmap.constants import DEFAULT_META

    path.write_text(json.dumps({'meta': dict(DEFAULT_META), 'results': results}))
    return path


def _line(label: int = 1, n: int = 3) -> dict:
    return {'vectors': [[[float(i), 1.0] for i in range(n)]], 'scores': [0.9], 'labels': [label]}


def _cli_error(capsys, argv: list[str]) -> str:
    """Runs the CLI, asserts the user-error exit status, returns stderr (checked to be traceback-free)."""
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith('interndrive: error: ') and 'Traceback' not in err
    return err


def test_error_classes_are_cli_user_errors():
    from interndrive.hdmap.annotations import AnnotationError
    from interndrive.hdmap.submission import SubmissionError

    for cls in (HDMapInputError, AnnotationError, SubmissionError):
        assert issubclass(cls, InterndriveError) and issubclass(cls, ValueError)
    # one message argument: mmengine's registry re-raises constructor errors as type(e)(msg)
    assert str(AnnotationError('x')) == 'x'


def test_submission_with_unknown_label_and_one_point_line(ann_file, tmp_path, capsys):
    t0, t1 = _tokens(ann_file)
    sub = _submission(tmp_path / 'bad_sub.json', {t0: _line(label=7), t1: _line(n=1)})
    err = _cli_error(capsys, ['evaluate', 'hdmap', str(sub), str(ann_file)])
    assert f'submission {sub} cannot be scored' in err
    assert f"results['{t0}'].labels[0]: unknown label 7" in err
    assert f"results['{t1}'].vectors[0]: polyline with 1 point(s)" in err


def test_missing_tokens_warn_by_default_and_fail_when_strict(ann_file, tmp_path, capsys):
    t0, t1 = _tokens(ann_file)
    sub = _submission(tmp_path / 'partial.json', {t0: _line()})
    capsys.readouterr()
    assert cli.main(['evaluate', 'hdmap', str(sub), str(ann_file)]) == 0
    err = capsys.readouterr().err
    assert 'warning' in err and repr(t1) in err and 'scored as frames without predictions' in err
    err = _cli_error(
        capsys,
        ['evaluate', 'hdmap', str(sub), str(ann_file), '--option', 'strict_tokens=true'],
    )
    assert repr(t1) in err


def test_missing_and_malformed_files_are_named(ann_file, tmp_path, capsys):
    missing = tmp_path / 'nope.json'
    err = _cli_error(capsys, ['evaluate', 'hdmap', str(missing), str(ann_file)])
    assert str(missing) in err and 'does not exist' in err
    broken = tmp_path / 'broken.json'
    broken.write_text('{"meta": ')
    err = _cli_error(capsys, ['evaluate', 'hdmap', str(broken), str(ann_file)])
    assert f'submission {broken}: not valid JSON' in err
    csv = tmp_path / 'sub.csv'
    csv.write_text('a,b')
    err = _cli_error(capsys, ['evaluate', 'hdmap', str(csv), str(ann_file)])
    assert "expected a .json (or .pkl) file, got '.csv'" in err


def test_invalid_annotation_file_names_file_frame_and_field(ann_file, tmp_path, capsys):
    data = json.loads(ann_file.read_text())
    seg = next(iter(data))
    data[seg][1]['annotation']['divider'] = [[[0.0, 0.0, 0.0, 1.0]]]
    del data[seg][0]['sensor']['ring_side_left']
    bad = tmp_path / 'bad_annotations.json'
    bad.write_text(json.dumps(data))
    sub = _submission(tmp_path / 'sub.json', {})
    err = _cli_error(capsys, ['evaluate', 'hdmap', str(sub), str(bad)])
    assert f'annotation file {bad}: 2 problem(s)' in err
    assert f"['{seg}'][1].annotation.divider[0]: has 1 point(s)" in err
    assert f"['{seg}'][0].sensor: missing camera(s) ['ring_side_left']" in err


def test_unknown_evaluate_option(ann_file, tmp_path, capsys):
    sub = _submission(tmp_path / 'sub.json', {})
    err = _cli_error(capsys, ['evaluate', 'hdmap', str(sub), str(ann_file), '--option', 'thr=2'])
    assert "unknown option(s) ['thr']; supported: strict_tokens" in err
    argv = ['evaluate', 'hdmap', str(sub), str(ann_file), '--option', 'strict_tokens=yes']
    assert "strict_tokens must be true or false, got 'yes'" in _cli_error(capsys, argv)


def test_converter_paths_and_arguments(tmp_path, capsys):
    out = str(tmp_path / 'ann.json')
    err = _cli_error(capsys, ['hdmap', 'convert', str(tmp_path / 'no_logs'), '--out', out])
    assert f'{tmp_path / "no_logs"}: no such folder' in err
    (tmp_path / 'empty').mkdir()
    err = _cli_error(capsys, ['hdmap', 'convert', str(tmp_path / 'empty'), '--out', out])
    assert 'neither an AV2 log (no map/ folder) nor a folder of logs' in err
    log = tmp_path / 'log'
    (log / 'map').mkdir(parents=True)
    err = _cli_error(capsys, ['hdmap', 'convert', str(log), '--out', out, '--interval', '0'])
    assert '--interval must be > 0 seconds, got 0.0' in err
    err = _cli_error(capsys, ['hdmap', 'convert', str(log), '--out', out])
    assert f'{log}: no city_SE3_egovehicle.feather' in err


def test_generate_arguments(tmp_path, capsys):
    err = _cli_error(capsys, ['hdmap', 'generate', str(tmp_path), '--frames', '0'])
    assert 'frames_per_segment (--frames) must be >= 1, got 0' in err
    err = _cli_error(capsys, ['hdmap', 'generate', str(tmp_path), '--image-scale', '2'])
    assert 'image_scale (--image-scale) must be in (0, 1], got 2.0' in err


def test_visualize_unknown_token(ann_file, tmp_path, capsys):
    argv = ['visualize', 'hdmap', str(ann_file), '--out-dir', str(tmp_path), '--token', '123']
    err = _cli_error(capsys, argv)
    assert f"{ann_file}: no frame with token(s) ['123']" in err


def test_test_split_validates_and_visualizes_but_cannot_be_scored(ann_file, tmp_path, capsys):
    data = json.loads(ann_file.read_text())
    for frames in data.values():
        for frame in frames:
            del frame['annotation']
    test_file = tmp_path / 'test_annotations.json'
    test_file.write_text(json.dumps(data))
    t0, t1 = _tokens(ann_file)
    sub = _submission(tmp_path / 'sub.json', {t0: _line(), t1: _line(label=2)})
    capsys.readouterr()
    assert (
        cli.main(['hdmap', 'validate', str(test_file), '--submission', str(sub), '--strict-tokens'])
        == 0
    )
    out = capsys.readouterr().out
    assert '2 frame(s) (2 without map annotations: test split, not scorable)' in out
    assert '0 error(s), 0 warning(s), 2 prediction(s)' in out
    err = _cli_error(capsys, ['evaluate', 'hdmap', str(sub), str(test_file)])
    assert (
        f'annotation file {test_file}' in err
        and "missing key(s) ['annotation'] (a test split" in err
    )
    argv = ['visualize', 'hdmap', str(test_file), '--submission', str(sub), '--out-dir',
            str(tmp_path / 'vis'), '--score-thr', '0']  # fmt: skip
    assert cli.main(argv) == 0
    assert len(list((tmp_path / 'vis').glob('*_bev.png'))) == 2


def test_convert_checkpoint_missing_file_and_foreign_checkpoint(tmp_path, capsys):
    torch = pytest.importorskip('torch')
    err = _cli_error(capsys, ['hdmap', 'convert-checkpoint', str(tmp_path / 'nope.pth'), 'x.pth'])
    assert "upstream checkpoint '" in err and "nope.pth' does not exist" in err
    torch.save({'state_dict': {'backbone.img_backbone.patch_embed.conv1.weight': torch.zeros(1)}},
               tmp_path / 'backbone.pth')  # fmt: skip
    err = _cli_error(
        capsys,
        ['hdmap', 'convert-checkpoint', str(tmp_path / 'backbone.pth'), str(tmp_path / 'x.pth')],
    )
    assert 'backbone.pth: not an upstream VectorMapNet checkpoint, no keys for FPN' in err
    assert not (tmp_path / 'x.pth').exists()
