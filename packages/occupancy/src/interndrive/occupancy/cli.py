"""Task-specific command-line parts: `interndrive occupancy {generate,convert,validate,pack}` and the
flags of `interndrive visualize occupancy`. Heavy imports happen inside the handlers."""

from __future__ import annotations

import argparse
from pathlib import Path

from interndrive.common.task_checkpoint_cli import add_convert_checkpoint_command
from interndrive.occupancy.constants import CAMERA_NAMES
from interndrive.occupancy.errors import OccupancyDataError


def cmd_generate(args: argparse.Namespace) -> int:
    from interndrive.occupancy.synthetic import generate_synthetic_dataset

    dataset = generate_synthetic_dataset(
        args.out,
        version=args.version,
        num_scenes=args.scenes,
        samples_per_scene=args.samples_per_scene,
        image_size=tuple(args.image_size),
        seed=args.seed,
    )
    print(f'wrote {len(dataset.sample_tokens)} samples of {dataset.scene_names} to {dataset.root}')
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from interndrive.occupancy.converter import create_occ_infos

    written = create_occ_infos(
        args.data_root,
        args.can_bus_root,
        out_dir=args.out_dir,
        version=args.version,
        occ_root=args.occ_root,
        info_prefix=args.prefix,
        max_sweeps=args.max_sweeps,
        legacy_can_bus=args.legacy_can_bus,
    )
    for split, path in written.items():
        print(f'{split}: {path}')
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from interndrive.occupancy.evaluate import expected_tokens
    from interndrive.occupancy.submission import validate_submission

    expected = None
    if args.ground_truth:  # an info .pkl of the test split works too (tokens only)
        expected = expected_tokens(args.ground_truth, args.split, args.occ_root)
    report = validate_submission(args.submission, expected)
    for error in report.errors:
        print(f'REJECTED: {error}')
    print(f'{len(report.tokens)} prediction file(s), {len(report.errors)} problem(s)')
    return 0 if report.ok else 1


def cmd_pack(args: argparse.Namespace) -> int:
    from interndrive.occupancy.submission import pack_submission, validate_submission

    validate_submission(args.folder).raise_if_invalid()
    print(pack_submission(args.folder, args.zip))
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Adds `generate`, `convert`, `validate`, `pack` and `convert-checkpoint` under
    `interndrive occupancy`."""
    generate = subparsers.add_parser(
        'generate', help='write a small synthetic nuScenes + Occ3D dataset'
    )
    generate.add_argument(
        'out', help='output folder (nuScenes data root, CAN bus root and Occ3D root)'
    )
    generate.add_argument(
        '--version', default='v1.0-mini', choices=('v1.0-mini', 'v1.0-trainval', 'v1.0-test')
    )
    generate.add_argument('--scenes', type=int, default=2)
    generate.add_argument('--samples-per-scene', type=int, default=3)
    generate.add_argument('--image-size', type=int, nargs=2, default=(128, 72), metavar=('W', 'H'))
    generate.add_argument('--seed', type=int, default=0)
    generate.set_defaults(func=cmd_generate)

    convert = subparsers.add_parser(
        'convert', help='nuScenes + CAN bus + Occ3D index -> info pickles'
    )
    convert.add_argument(
        '--data-root', required=True, help='nuScenes data root (with v1.0-*/, samples/)'
    )
    convert.add_argument(
        '--can-bus-root', help='folder that contains can_bus/ (omit: zeros, e.g. test)'
    )
    convert.add_argument(
        '--occ-root', help='Occ3D root with annotations.json (default: --data-root)'
    )
    convert.add_argument('--out-dir', help='where to write the pickles (default: --data-root)')
    convert.add_argument(
        '--version', default='v1.0-trainval', choices=('v1.0-trainval', 'v1.0-mini', 'v1.0-test')
    )
    convert.add_argument('--prefix', default='occ', help='file name prefix (default: occ)')
    convert.add_argument('--max-sweeps', type=int, default=10)
    convert.add_argument(
        '--legacy-can-bus',
        action='store_true',
        help='reproduce the upstream bug: CAN accel/rotation_rate/vel from the next message',
    )
    convert.set_defaults(func=cmd_convert)

    validate = subparsers.add_parser('validate', help='check a submission folder or zip')
    validate.add_argument('submission', help='folder or .zip of <sample_token>.npz')
    validate.add_argument(
        '--ground-truth', help='Occ3D root or info .pkl: also require every token'
    )
    validate.add_argument('--split', default='val', choices=('val', 'train', 'all'))
    validate.add_argument('--occ-root', help='root of the occ_gt_path entries of an info .pkl')
    validate.set_defaults(func=cmd_validate)

    pack = subparsers.add_parser('pack', help='validate a submission folder and zip it for upload')
    pack.add_argument('folder')
    pack.add_argument('zip')
    pack.set_defaults(func=cmd_pack)

    add_convert_checkpoint_command(
        subparsers,
        converter='interndrive.occupancy.checkpoint',
        help='upstream BEVFormer-Occ .pth -> BEVFormerOcc .pth (key rename)',
        summary='{dst}: {num_tensors} tensors',
        unused='not used by BEVFormerOcc: {key}',
        # Released weights were trained with upstream's BEV conventions and CAN-bus bug: say how
        # to run them.
        run_hint=(
            'run these weights with upstream conventions: interndrive test CONFIG {dst} '
            '--cfg-options model.bev_constructor.bev_axes=right_forward '
            '"model.bev_constructor.rotate_center=[100,100]" '
            'model.bev_constructor.encoder.reproduce_shift_ref_2d_bug=True '
            '(on infos converted with `interndrive occupancy convert --legacy-can-bus`)'
        ),
    )


def add_visualize_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `interndrive visualize occupancy`."""
    parser.add_argument('--info', help='info .pkl: render its samples (images, GT and predictions)')
    parser.add_argument(
        '--data-root', help='nuScenes data root of the info image paths (default: info folder)'
    )
    parser.add_argument('--occ-root', help='Occ3D root of occ_gt_path (default: --data-root)')
    parser.add_argument('--submission', help='folder or .zip of <token>.npz predictions')
    parser.add_argument('--token', action='append', help='sample token to render (repeatable)')
    parser.add_argument(
        '--max-frames', type=int, default=4, help='frames to render without --token'
    )
    parser.add_argument('--gt', help='a labels.npz to render (without --info)')
    parser.add_argument('--pred', help='a prediction .npz to render (without --info)')
    parser.add_argument(
        '--images-dir', help='folder with the six *__CAM_*__*.jpg images (without --info)'
    )
    parser.add_argument(
        '--camera-mask', action='store_true', help='draw only camera-visible voxels'
    )
    parser.add_argument(
        '--view3d', action='store_true', help='add a 3D view of the occupied voxels'
    )
    parser.add_argument('--out-dir', default='work_dirs/vis_occupancy', help='where the PNGs go')


def _images_in_dir(folder: Path) -> dict[str, Path]:
    found = {}
    for camera in CAMERA_NAMES:
        matches = sorted(folder.glob(f'*__{camera}__*.jpg'))
        if matches:
            found[camera] = matches[0]
    if not found:
        raise OccupancyDataError(
            f'--images-dir {str(folder)!r}: no *__CAM_<NAME>__*.jpg images found'
        )
    return found


def visualize(args: argparse.Namespace) -> list[Path]:
    """Renders PNGs for `interndrive visualize occupancy`; returns the written paths."""
    import numpy as np

    from interndrive.occupancy.formats import load_infos, load_labels
    from interndrive.occupancy.submission import _read_npz, iter_submission
    from interndrive.occupancy.visualization import load_camera_images, render_frame

    out_dir = Path(args.out_dir)
    written: list[Path] = []
    if args.info:
        infos = load_infos(args.info)['infos']
        data_root = Path(args.data_root) if args.data_root else Path(args.info).parent
        occ_root = Path(args.occ_root) if args.occ_root else data_root
        by_token = {info['token']: info for info in infos}
        tokens = args.token or [info['token'] for info in infos[: args.max_frames]]
        unknown = [t for t in tokens if t not in by_token]
        if unknown:
            raise OccupancyDataError(f'--token {unknown[0]!r} is not a sample of {args.info}')
        predictions = dict(iter_submission(args.submission, tokens)) if args.submission else {}
        for token in tokens:
            info = by_token[token]
            images = load_camera_images(
                {c: data_root / cam['data_path'] for c, cam in info['cams'].items()}
            )
            labels = (
                load_labels(occ_root / info['occ_gt_path']) if info.get('occ_gt_path') else None
            )
            written.append(
                render_frame(
                    out_dir / f'{token}.png',
                    gt=None if labels is None else labels.semantics,
                    pred=predictions.get(token),
                    images=images,
                    mask_camera=labels.mask_camera
                    if (labels is not None and args.camera_mask)
                    else None,
                    title=f'{info["scene_name"]} frame {info["frame_idx"]}  {token}',
                    view3d=args.view3d,
                )
            )
        return written
    if not args.gt and not args.pred:
        raise OccupancyDataError('visualize occupancy: give --info, or --gt and/or --pred')
    labels = load_labels(args.gt) if args.gt else None
    pred = _read_npz(Path(args.pred), args.pred) if args.pred else None
    images = load_camera_images(_images_in_dir(Path(args.images_dir))) if args.images_dir else None
    if args.camera_mask and labels is None:
        raise OccupancyDataError('--camera-mask needs --gt (the mask is stored in labels.npz)')
    name = Path(args.pred or args.gt).stem if not args.gt else Path(args.gt).parent.name or 'frame'
    written.append(
        render_frame(
            out_dir / f'{name}.png',
            gt=None if labels is None else labels.semantics,
            pred=None if pred is None else np.asarray(pred),
            images=images,
            mask_camera=labels.mask_camera if (labels is not None and args.camera_mask) else None,
            title=name,
            view3d=args.view3d,
        )
    )
    return written
