"""The `interndrive` CLI plug-in of the HD map task (entry point `interndrive.tasks:hdmap`).

Offline scoring (`interndrive evaluate hdmap`), `interndrive visualize hdmap`, the task commands
`interndrive hdmap {convert,generate,validate,convert-checkpoint}`, model registration for
`interndrive train/test` and `interndrive demo hdmap`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from interndrive.common.task_checkpoint_cli import add_convert_checkpoint_command
from interndrive.common.tasks import Task

CONFIG_DIR = Path(__file__).resolve().parent / 'configs'
if (
    not CONFIG_DIR.is_dir()
):  # source checkout: configs live next to src/, the wheel ships them inside
    CONFIG_DIR = Path(__file__).resolve().parents[3] / 'configs'

# Published Chamfer AP of the seed models on the challenge val set (fractions, like `evaluate`).
REFERENCE_METRICS: dict[str, dict[str, float]] = {
    'vectormapnet_intern': {
        'mAP': 0.4935,
        'AP_ped_crossing': 0.4505,
        'AP_divider': 0.5678,
        'AP_boundary': 0.4622,
    },
    'vectormapnet_base': {
        'mAP': 0.4279,
        'AP_ped_crossing': 0.3722,
        'AP_divider': 0.5047,
        'AP_boundary': 0.4068,
    },
}


def evaluate(
    submission: str | Path, ground_truth: str | Path, **options: Any
) -> Mapping[str, float]:
    """`interndrive evaluate hdmap SUBMISSION ANNOTATIONS [--option strict_tokens=true]`."""
    from .errors import HDMapInputError
    from .evaluation import evaluate_files

    unknown = set(options) - {'strict_tokens'}
    if unknown:
        raise HDMapInputError(
            f'evaluate hdmap: unknown option(s) {sorted(unknown)}; supported: strict_tokens'
        )
    strict = options.get('strict_tokens', False)
    if not isinstance(strict, bool):  # bool('false') would be True
        raise HDMapInputError(
            f'evaluate hdmap: --option strict_tokens must be true or false, got {strict!r}'
        )
    return evaluate_files(submission, ground_truth, strict_tokens=strict)


def format_metrics(metrics: Mapping[str, float]) -> str:
    from .evaluation import format_metrics as _format

    return _format(metrics)


def register_modules() -> None:
    from .registration import register_modules as _register

    _register()


def demo(work_dir: Path) -> Mapping[str, Any]:
    from .demo import run_demo

    return run_demo(work_dir)


def add_visualize_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('annotations', help='annotation .json ({segment: [frame]})')
    parser.add_argument('--submission', help='submission .json whose predictions are drawn too')
    parser.add_argument('--out-dir', default='work_dirs/vis_hdmap', help='output folder for PNGs')
    parser.add_argument('--image-root', help="folder the frames' image_path are relative to")
    parser.add_argument('--segment', help='only frames of this segment (log id)')
    parser.add_argument('--token', action='append', help='frame token (timestamp); repeatable')
    parser.add_argument('--max-frames', type=int, default=5, help='frames to draw without --token')
    parser.add_argument(
        '--score-thr', type=float, default=0.3, help='minimum prediction score drawn'
    )


def visualize(args: argparse.Namespace) -> list[Path]:
    from .visualize import visualize_files

    return visualize_files(
        args.annotations,
        args.out_dir,
        submission=args.submission,
        image_root=args.image_root,
        tokens=args.token,
        segment=args.segment,
        max_frames=args.max_frames,
        score_thr=args.score_thr,
    )


def _cmd_convert(args: argparse.Namespace) -> int:
    from .annotations import save_annotations
    from .convert_av2 import convert_logs

    ann = convert_logs(args.logs, interval_s=args.interval, max_frames=args.max_frames)
    path = save_annotations(ann, args.out)
    frames = sum(len(v) for v in ann.values())
    print(f'wrote {path}: {len(ann)} log(s), {frames} frame(s)')
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from .synthetic import annotation_summary, generate_dataset

    path = generate_dataset(
        args.out_dir,
        split=args.split,
        num_segments=args.segments,
        frames_per_segment=args.frames,
        seed=args.seed,
        images=not args.no_images,
        image_scale=args.image_scale,
    )
    print(f'wrote {path}: {annotation_summary(path)}')
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from .annotations import AnnotationError, frame_tokens, iter_frames, load_annotations
    from .io_utils import read_json_or_pickle
    from .submission import validate_submission

    # a test split has no map annotations: its cameras, poses and tokens are still checked
    try:
        ann = load_annotations(args.annotations, require_map=False)
    except AnnotationError as e:
        print(e, file=sys.stderr)
        return 1
    tokens = frame_tokens(ann)
    without_map = sum('annotation' not in f for f in iter_frames(ann))
    note = (
        f' ({without_map} without map annotations: test split, not scorable)' if without_map else ''
    )
    print(f'{args.annotations}: valid annotation file, {len(tokens)} frame(s){note}')
    if args.submission is None:
        return 0
    report = validate_submission(
        read_json_or_pickle(args.submission, 'submission'),
        tokens,
        strict_tokens=args.strict_tokens,
    )
    print(f'{args.submission}: ' + report.summary())
    return 0 if report.ok else 1


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    convert = subparsers.add_parser(
        'convert', help='build challenge annotations from raw Argoverse 2 sensor logs (av2 package)'
    )
    convert.add_argument('logs', nargs='+', help='AV2 log folders, or folders containing logs')
    convert.add_argument('--out', required=True, help='annotation .json to write')
    convert.add_argument(
        '--interval', type=float, default=0.5, help='seconds between frames (2 Hz)'
    )
    convert.add_argument('--max-frames', type=int, help='at most this many frames per log')
    convert.set_defaults(func=_cmd_convert)

    generate = subparsers.add_parser(
        'generate', help='write a synthetic dataset in the challenge format'
    )
    generate.add_argument('out_dir', help='output folder')
    generate.add_argument(
        '--split', default='val', help='split name (file <split>_annotations.json)'
    )
    generate.add_argument('--segments', type=int, default=2, help='number of segments')
    generate.add_argument('--frames', type=int, default=4, help='frames per segment')
    generate.add_argument('--seed', type=int, default=0, help='random seed')
    generate.add_argument(
        '--no-images', action='store_true', help='annotations only, no camera JPEGs'
    )
    generate.add_argument(
        '--image-scale', type=float, default=0.1, help='image size / AV2 full size'
    )
    generate.set_defaults(func=_cmd_generate)

    validate = subparsers.add_parser('validate', help='check an annotation file (and a submission)')
    validate.add_argument('annotations', help='annotation .json')
    validate.add_argument('--submission', help='submission .json to check against the annotations')
    validate.add_argument(
        '--strict-tokens', action='store_true', help='missing frames in the submission are errors'
    )
    validate.set_defaults(func=_cmd_validate)

    add_convert_checkpoint_command(
        subparsers,
        converter='interndrive.hdmap.checkpoint',
        help="upstream VectorMapNet .pth -> this package's VectorMapNet .pth (keys and layouts)",
        run_hint=(
            'run it with the conventions it was trained with:\n'
            '  interndrive test hdmap/vectormapnet_intern {dst} --cfg-options {options}'
        ),
    )


TASK = Task(
    name='hdmap',
    description='Online HD map construction (Argoverse 2, CVPR 2023): VectorMapNet, Chamfer AP',
    config_dir=CONFIG_DIR,
    register_modules=register_modules,
    evaluate=evaluate,
    format_metrics=format_metrics,
    demo=demo,
    visualize=visualize,
    add_visualize_arguments=add_visualize_arguments,
    add_commands=add_commands,
    reference_metrics=REFERENCE_METRICS,
)
