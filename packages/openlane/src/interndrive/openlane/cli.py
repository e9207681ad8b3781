"""`interndrive openlane ...` subcommands and `interndrive visualize openlane` (argparse glue only)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from interndrive.common.engine.checks import InterndriveError, MissingPathError
from interndrive.common.task_checkpoint_cli import add_convert_checkpoint_command

from .constants import METRIC_VERSIONS
from .evaluation import MetricVersionError
from .formats import FormatError
from .submission import SubmissionError


@contextmanager
def user_errors() -> Iterator[None]:
    """Re-raises bad-input errors as the CLI's one-line user errors (exit status 2)."""
    try:
        yield
    except (SubmissionError, FormatError, FileNotFoundError, MetricVersionError) as err:
        kind = MissingPathError if isinstance(err, FileNotFoundError) else InterndriveError
        raise kind(' '.join(str(err).split())) from err


def _at_least(minimum: float, kind: type = int):
    """argparse type: a number ≥ `minimum` (argparse names the option in its error)."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected {kind.__name__}, got {text!r}') from None
        if not value >= minimum:
            raise argparse.ArgumentTypeError(f'must be ≥ {minimum}, got {text}')
        return value

    parse.__name__ = kind.__name__  # argparse's "invalid <name> value" message
    return parse


def cmd_convert(args: argparse.Namespace) -> int:
    from .convert import convert

    with user_errors():
        written = convert(
            args.data_root,
            args.data_dict,
            out_dir=args.out_dir,
            splits=args.split,
            point_interval=args.point_interval,
            check_images=args.check_images,
            backend=args.backend,
        )
    for path in written:
        print(path)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from .convert import convert
    from .synthetic import write_dataset

    splits = {'train': args.train_segments, 'val': args.val_segments}
    if args.test_segments:
        splits['test'] = args.test_segments
    split_file = write_dataset(
        args.out,
        splits=splits,
        frames_per_segment=args.frames_per_segment,
        image_scale=args.image_scale,
        seed=args.seed,
        write_images=not args.no_images,
    )
    print(split_file)
    if args.convert:
        for path in convert(args.out, split_file):
            print(path)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from .formats import load_collection
    from .submission import load_submission, validate_submission

    with user_errors():
        # Only the frame list is needed: the test split's pickle (no annotation) is fine.
        tokens = (
            list(load_collection(args.ground_truth, require_annotation=False))
            if args.ground_truth
            else None
        )
        report = validate_submission(load_submission(args.submission), tokens)
    for warning in report.warnings:
        print(f'warning: {warning}')
    if report.ok:
        print(f'{args.submission}: valid')
        return 0
    for error in report.errors:
        print(f'error: {error}')
    print(f'{args.submission}: INVALID ({len(report.errors)} problems)')
    return 1


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """`interndrive openlane convert | generate | validate | convert-checkpoint`."""
    p = subparsers.add_parser(
        'convert', help='raw OpenLane-V2 (info JSON + data_dict) → collection pickles (preprocess)'
    )
    p.add_argument('data_root', help='dataset root (data/OpenLane-V2) with <split>/<segment>/info/')
    p.add_argument('data_dict', help='split file, e.g. data/OpenLane-V2/data_dict_subset_A.json')
    p.add_argument(
        '--out-dir', help='where to write data_dict_<subset>_<split>.pkl (default: root)'
    )
    p.add_argument('--split', action='append', help='split to convert (repeatable; default all)')
    p.add_argument(
        '--point-interval',
        type=_at_least(1),
        help='lane point subsampling (default 1 train, 20 val/test)',
    )
    p.add_argument('--check-images', action='store_true', help='fail on missing images')
    p.add_argument('--backend', choices=['auto', 'devkit', 'builtin'], default='auto')
    p.set_defaults(func=cmd_convert)

    p = subparsers.add_parser('generate', help='write a synthetic dataset in the on-disk format')
    p.add_argument('out', help='output dataset root')
    p.add_argument('--train-segments', type=_at_least(0), default=2)
    p.add_argument('--val-segments', type=_at_least(0), default=1)
    p.add_argument('--test-segments', type=_at_least(0), default=0)
    p.add_argument('--frames-per-segment', type=_at_least(1), default=2)
    p.add_argument(
        '--image-scale',
        type=_at_least(1e-3, float),
        default=0.125,
        help='1.0 = full 2048×1550 images',
    )
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--no-images', action='store_true', help='info JSON and split file only')
    p.add_argument('--convert', action='store_true', help='also build the collection pickles')
    p.set_defaults(func=cmd_generate)

    p = subparsers.add_parser('validate', help='check a submission pickle, listing every problem')
    p.add_argument('submission', help='submission .pkl')
    p.add_argument('--ground-truth', help='collection .pkl: also check every GT frame is predicted')
    p.set_defaults(func=cmd_validate)

    add_convert_checkpoint_command(
        subparsers,
        converter='interndrive.openlane.checkpoint',
        help="upstream OpenLane-V2 baseline .pth (ROAD_BEVFormer) -> this package's RoadBEVFormer .pth",
        # Released weights saw upstream's stretched front view: say how to feed them the same images.
        run_hint=(
            'run it on the inputs it was trained with:\n'
            '  interndrive test openlane/internimage-s {dst} --cfg-options {options}'
        ),
    )


def add_visualize_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        'ground_truth', help='collection .pkl (data_dict_subset_A_val.pkl) or info JSON'
    )
    parser.add_argument('--data-root', help='dataset root, to draw the front camera image')
    parser.add_argument('--submission', help='submission .pkl to draw predictions from')
    parser.add_argument('--out-dir', default='work_dirs/vis_openlane', help='PNG folder')
    parser.add_argument('--num', type=_at_least(1), default=4, help='number of frames to render')
    parser.add_argument('--score-threshold', type=float, default=0.3)


def visualize(args: argparse.Namespace) -> list[Path]:
    """Renders the first `--num` frames (GT, plus predictions with `--submission`) to PNGs."""

    with user_errors():
        return _visualize(args)


def _visualize(args: argparse.Namespace) -> list[Path]:
    from .formats import load_collection, load_frame_info
    from .submission import load_submission
    from .visualize import render_frame

    gt_path = Path(args.ground_truth)
    frames: dict[Any, Any]
    if gt_path.suffix == '.json':
        info = load_frame_info(gt_path)
        frames = {
            (
                gt_path.parts[-4] if len(gt_path.parts) >= 4 else '',
                info['segment_id'],
                str(info['timestamp']),
            ): info
        }
    else:
        frames = load_collection(gt_path, require_annotation=False)
    results = load_submission(args.submission)['results'] if args.submission else {}
    out = []
    for token, frame in list(frames.items())[: args.num]:
        pred = results.get(token, {}).get('predictions') if results else None
        name = '_'.join(str(t) for t in token) + '.png'
        out.append(
            render_frame(
                frame,
                Path(args.out_dir) / name,
                root=args.data_root,
                prediction=pred,
                score_threshold=args.score_threshold,
            )
        )
    return out


__all__ = ['METRIC_VERSIONS', 'add_commands', 'add_visualize_arguments', 'visualize']
