"""OpenLane-V2 subset_A dataset and transforms on mmengine / mmdet3d 1.4 (OpenMMLab glue only).

The arithmetic lives in the pure modules (`image_ops`, `targets`, `bezier`, `formats`); this file
registers thin wrappers into mmdet3d's DATASETS / TRANSFORMS registries. Names carry an `OLV2`
prefix so they never collide with the other tasks' multi-view transforms in the shared registry.

Reference train pipeline (with upstream's bugs fixed: see `image_ops`):

    OLV2LoadMultiViewImages → OLV2PhotoMetricDistortion (0–255, before normalisation)
    → OLV2ResizeFrontView (uniform; upstream_swap=True reproduces the stretch)
    → OLV2NormalizeMultiViewImage → OLV2PadMultiViewImage(32) → OLV2ParameterizeLane(5)
    → PackOpenLaneV2Inputs

Results keys: `img_filename` (7 paths, front first) → `img` (list of H×W×3 float32 RGB),
`cam_intrinsic` (3×3), `lidar2cam` / `lidar2img` (4×4; "lidar" = ego frame here, as upstream),
`img_shape` / `pad_shape`, `scale_factor` (front view), `can_bus` (18), and the ground truth
`gt_lc_points` (list of (N, 3)), `gt_lc` ((L, 15) after ParameterizeLane), `gt_te` (T, 4 xyxy),
`gt_te_labels` (T,), `gt_topology_lclc` (L, L), `gt_topology_lcte` (L, T).
"""

from __future__ import annotations

import importlib
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet3d.registry import DATASETS, TRANSFORMS
from mmengine.dataset import BaseDataset

from .bezier import fit_bezier_endpoint_fixed
from .constants import FRONT_CAMERA, TRAFFIC_ELEMENT_ATTRIBUTES
from .formats import FormatError, check_collection, load_collection
from .image_ops import (
    IMAGENET_MEAN_RGB,
    IMAGENET_STD_RGB,
    lidar2img,
    normalize,
    pad_views,
    photometric_distortion,
    resize_front_view,
    scale_view,
)


def rotation_to_quaternion(rot: np.ndarray) -> np.ndarray:
    """(w, x, y, z) unit quaternion of a 3×3 rotation matrix."""
    m = np.asarray(rot, dtype=np.float64)
    w = np.sqrt(max(0.0, 1 + m[0, 0] + m[1, 1] + m[2, 2])) / 2
    x = np.copysign(np.sqrt(max(0.0, 1 + m[0, 0] - m[1, 1] - m[2, 2])) / 2, m[2, 1] - m[1, 2])
    y = np.copysign(np.sqrt(max(0.0, 1 - m[0, 0] + m[1, 1] - m[2, 2])) / 2, m[0, 2] - m[2, 0])
    z = np.copysign(np.sqrt(max(0.0, 1 - m[0, 0] - m[1, 1] + m[2, 2])) / 2, m[1, 0] - m[0, 1])
    q = np.array([w, x, y, z])
    return q / np.linalg.norm(q)


def can_bus_from_pose(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """Upstream's 18-vector: absolute translation, rotation quaternion, yaw (rad at -2, degrees
    in [0, 360) at -1); no motion terms (OpenLane-V2 has no CAN bus and no temporal history)."""
    rot = np.asarray(rotation, dtype=np.float64)
    can_bus = np.zeros(18)
    can_bus[:3] = translation
    can_bus[3:7] = rotation_to_quaternion(rot)
    yaw = float(np.degrees(np.arctan2(rot[1, 0], rot[0, 0])))
    yaw = yaw + 360.0 if yaw < 0 else yaw
    can_bus[-2] = np.radians(yaw)
    can_bus[-1] = yaw
    return can_bus


IO_BACKENDS = ('auto', 'devkit', 'builtin')


def devkit_dataset_available() -> bool:
    """True when the official devkit's dataset API (`openlanev2.centerline.dataset`) imports."""
    try:
        importlib.import_module('openlanev2.centerline.dataset')
    except ImportError:
        return False
    return True


class DictFrame:
    """The getters of the devkit's `openlanev2.centerline.dataset.Frame` that the dataset uses,
    over the same frame dict: the fallback when the devkit is not installed."""

    def __init__(self, root_path: str, meta: dict[str, Any]) -> None:
        self.root_path = root_path
        self.meta = meta

    def get_camera_list(self) -> list[str]:
        return list(self.meta['sensor'])

    def get_pose(self) -> dict[str, Any]:
        return self.meta['pose']

    def get_image_path(self, camera: str) -> str:
        return f'{self.root_path}/{self.meta["sensor"][camera]["image_path"]}'

    def get_intrinsic(self, camera: str) -> dict[str, Any]:
        return self.meta['sensor'][camera]['intrinsic']

    def get_extrinsic(self, camera: str) -> dict[str, Any]:
        return self.meta['sensor'][camera]['extrinsic']

    def get_annotations(self) -> dict[str, Any] | None:
        return self.meta.get('annotation')


@DATASETS.register_module()
class OpenLaneV2Dataset(BaseDataset):
    """Frames of a collection pickle (`interndrive openlane convert`) → pipeline inputs.

    The frames are read through the official devkit's dataset API, as upstream does:
    `openlanev2.centerline.dataset.Collection` loads the pickle and each frame's calibration, pose,
    image paths and annotations come from its `Frame` getters. Without the devkit (`io_backend=
    'builtin'`, or 'auto' when it is not installed) the same getters run over the same dicts
    (`DictFrame`); a test checks that both give identical samples.

    Args:
        ann_file: Collection pickle, e.g. `data_dict_subset_A_train.pkl` (relative: under data_root).
        data_root: Dataset root the info image paths are relative to.
        pipeline: Transforms.
        test_mode: Frames without annotations are allowed (test split).
        io_backend: 'devkit' (official `Collection`/`Frame`), 'builtin', or 'auto' (the devkit
            when installed).
        **kwargs: Forwarded to mmengine's BaseDataset.
    """

    METAINFO: ClassVar[dict[str, Any]] = {
        'classes': ('lane_centerline',),
        'te_classes': TRAFFIC_ELEMENT_ATTRIBUTES,
    }

    def __init__(
        self,
        ann_file: str,
        data_root: str,
        pipeline: list | None = None,
        test_mode: bool = False,
        io_backend: str = 'auto',
        **kwargs: Any,
    ) -> None:
        from interndrive.common.engine.checks import ConfigError

        if io_backend not in IO_BACKENDS:
            raise ConfigError(
                f'OpenLaneV2Dataset io_backend must be one of {IO_BACKENDS}, got {io_backend!r}'
            )
        if io_backend == 'auto':
            io_backend = 'devkit' if devkit_dataset_available() else 'builtin'
        elif io_backend == 'devkit' and not devkit_dataset_available():
            raise ConfigError(
                "OpenLaneV2Dataset io_backend='devkit' needs the official devkit: "
                "pip install --no-deps openlanev2==2.1.0 (or io_backend='builtin')"
            )
        self.io_backend = io_backend
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            pipeline=pipeline or [],
            test_mode=test_mode,
            **kwargs,
        )

    def load_data_list(self) -> list[dict[str, Any]]:
        # One-line user errors (the CLI prints them and exits with 2) instead of a traceback
        # from deep inside Runner.from_cfg.
        from interndrive.common.engine.checks import InterndriveError, require_dir, require_file

        require_dir(
            self.data_root,
            'OpenLane-V2 data root',
            # A config's top-level data_root is substituted when the file is parsed, so
            # --cfg-options data_root=... changes nothing: name the keys that do.
            hint='run from the folder holding data/OpenLane-V2, or set '
            '{train,val,test}_dataloader.dataset.data_root and {val,test}_evaluator.ann_file '
            'with --cfg-options',
        )
        require_file(
            self.ann_file,
            'OpenLane-V2 collection pickle',
            hint='build it with `interndrive openlane convert ROOT ROOT/data_dict_subset_A.json`',
        )
        try:
            frames = self._load_frames()
            return [self.parse_frame(token, frame) for token, frame in frames]
        except FormatError as err:
            raise InterndriveError(' '.join(str(err).split())) from err

    def _load_frames(self) -> list[tuple[tuple[str, str, str], Any]]:
        """(token, frame) pairs in collection order; frames offer the devkit `Frame` getters."""
        require_annotation = not self.test_mode
        if self.io_backend == 'builtin':
            collection = load_collection(self.ann_file, require_annotation=require_annotation)
            return [(token, DictFrame(self.data_root, meta)) for token, meta in collection.items()]
        from openlanev2.centerline.dataset import Collection

        ann_file = Path(self.ann_file)
        try:
            devkit = Collection(str(self.data_root), str(ann_file.parent), ann_file.stem)
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError) as err:
            raise FormatError(f'{ann_file} is not a readable collection pickle: {err}') from err
        check_collection(
            {token: frame.meta for token, frame in devkit.frames.items()},
            ann_file,
            require_annotation,
        )
        return [(token, devkit.get_frame_via_identifier(token)) for token in devkit.keys]

    def parse_frame(self, token: tuple[str, str, str], frame: Any) -> dict[str, Any]:
        """Sample info of one frame (`openlanev2...Frame` or `DictFrame`)."""
        cameras = frame.get_camera_list()
        if cameras[0] != FRONT_CAMERA:
            raise FormatError(
                f'{self.ann_file}: frame {token} lists {cameras[0]} first, expected {FRONT_CAMERA}'
            )
        intrinsics, to_cam, to_img, paths = [], [], [], []
        for camera in cameras:
            extrinsic = frame.get_extrinsic(camera)
            k = np.asarray(frame.get_intrinsic(camera)['K'], dtype=np.float64)
            rot = np.asarray(extrinsic['rotation'], dtype=np.float64)
            trans = np.asarray(extrinsic['translation'], dtype=np.float64)
            ego2cam = np.eye(4)
            ego2cam[:3, :3] = rot.T
            ego2cam[:3, 3] = -rot.T @ trans
            intrinsics.append(k)
            to_cam.append(ego2cam)
            to_img.append(lidar2img(k, rot, trans))
            paths.append(str(Path(frame.get_image_path(camera))))  # the devkit joins with '/'
        pose = frame.get_pose()
        info: dict[str, Any] = {
            'token': token,
            'scene_token': token[1],
            'timestamp': token[2],
            'cam_names': cameras,
            'img_filename': paths,
            'cam_intrinsic': intrinsics,
            'lidar2cam': to_cam,
            'lidar2img': to_img,
            'can_bus': can_bus_from_pose(pose['rotation'], pose['translation']),
        }
        ann = frame.get_annotations()
        if ann is not None:
            n_l, n_t = len(ann['lane_centerline']), len(ann['traffic_element'])
            info.update(
                gt_lc_points=[np.asarray(x['points'], dtype=np.float32) for x in ann['lane_centerline']],
                gt_lc_labels=np.zeros(n_l, dtype=np.int64),
                gt_te=np.asarray([np.asarray(t['points']).reshape(4) for t in ann['traffic_element']], dtype=np.float32).reshape(n_t, 4),
                gt_te_labels=np.asarray([t['attribute'] for t in ann['traffic_element']], dtype=np.int64),
                gt_topology_lclc=np.asarray(ann['topology_lclc'], dtype=np.float32).reshape(n_l, n_l),
                gt_topology_lcte=np.asarray(ann['topology_lcte'], dtype=np.float32).reshape(n_l, n_t),
            )  # fmt: skip
        return info

    def get_scene_ids(self) -> list[str]:
        return [self.get_data_info(i)['scene_token'] for i in range(len(self))]


@TRANSFORMS.register_module()
class OLV2LoadMultiViewImages(BaseTransform):
    """Reads the 7 images (RGB float32; the front view stays portrait until ResizeFrontView)."""

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        images = []
        for path in results['img_filename']:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                from interndrive.common.engine.checks import MissingPathError

                raise MissingPathError(
                    f'camera image {path} is missing or not an image (expected '
                    '<data_root>/<split>/<segment>/image/<camera>/<timestamp>.jpg)'
                )
            images.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32))
        results['img'] = images
        results['ori_shape'] = [i.shape[:2] for i in images]
        results['img_shape'] = list(results['ori_shape'])
        results['scale_factor'] = (1.0, 1.0)
        return results


@TRANSFORMS.register_module()
class OLV2PhotoMetricDistortion(BaseTransform):
    """Photometric distortion of every view on 0–255 values (put it before normalisation).

    Args:
        seed: Fixed seed of the transform's own generator (tests). None (configs): each call draws
            its generator from NumPy's global RNG, which mmengine seeds (`randomness.seed`, per
            dataloader worker) and the interndrive train loops reseed per iteration, so `--seed`
            makes training reproducible (a generator seeded from OS entropy, as before, made every
            run differ). A mid-epoch resume augments like the uninterrupted run when the
            augmentation runs in the main process (`num_workers=0`); with workers it stays
            reproducible run to run but not across a resume (common/docs/tooling.md, "Limits").
    """

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed) if seed is not None else None

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        rng = self.rng
        if rng is None:
            # The legacy global RNG on purpose: it is the state mmengine seeds and reseeds.
            rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))  # noqa: NPY002
        results['img'] = [photometric_distortion(i, rng) for i in results['img']]
        return results


@TRANSFORMS.register_module()
class OLV2ResizeFrontView(BaseTransform):
    """Resizes the portrait front view to the other views' height (uniform scale), updating its
    intrinsic, `lidar2img`, the TE boxes and `scale_factor`.

    Args:
        upstream_swap: Reproduce upstream's accidental (w, h) swap (non-uniform stretch to
            landscape); only for running weights trained that way.
    """

    def __init__(self, upstream_swap: bool = False) -> None:
        self.upstream_swap = upstream_swap

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        images = results['img']
        target_h = max(i.shape[0] for i in images[1:]) if len(images) > 1 else images[0].shape[0]
        img, k, boxes, scale = resize_front_view(
            images[0],
            results['cam_intrinsic'][0],
            results.get('gt_te'),
            target_h,
            self.upstream_swap,
        )
        images[0] = img
        results['cam_intrinsic'][0] = k
        k4 = np.eye(4)
        k4[:3, :3] = k
        results['lidar2img'][0] = k4 @ results['lidar2cam'][0]
        if boxes is not None:
            results['gt_te'] = boxes
        # Composed with an earlier OLV2ScaleMultiViewImage: original front pixels → network pixels.
        prev_sx, prev_sy = results.get('scale_factor', (1.0, 1.0))
        results['scale_factor'] = (prev_sx * scale[0], prev_sy * scale[1])
        results['img_shape'] = [i.shape[:2] for i in images]
        return results


@TRANSFORMS.register_module()
class OLV2ScaleMultiViewImage(BaseTransform):
    """Scales all 7 views by one factor, updating intrinsics, `lidar2img`, the TE boxes and
    `scale_factor` (put it right after loading). Not in the reference configs (they train at full
    resolution); `olv2_tiny_cpu_real.py` uses it to run the tiny model on real images at 1/16.

    Args:
        scale: Size factor, e.g. 0.0625 for 128×97 views from the real 2048×1550.
    """

    def __init__(self, scale: float) -> None:
        if not 0 < scale:
            from interndrive.common.engine.checks import ConfigError

            raise ConfigError(f'OLV2ScaleMultiViewImage scale must be > 0, got {scale}')
        self.scale = scale

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        factors = []
        for view, img in enumerate(results['img']):
            out, k, factor = scale_view(img, results['cam_intrinsic'][view], self.scale)
            results['img'][view] = out
            results['cam_intrinsic'][view] = k
            k4 = np.eye(4)
            k4[:3, :3] = k
            results['lidar2img'][view] = k4 @ results['lidar2cam'][view]
            factors.append(factor)
        sx, sy = factors[0]  # traffic-element boxes live in the front image
        if results.get('gt_te') is not None:
            results['gt_te'] = np.asarray(results['gt_te'], dtype=np.float32) * np.array(
                [sx, sy, sx, sy], dtype=np.float32
            )
        prev_sx, prev_sy = results.get('scale_factor', (1.0, 1.0))
        results['scale_factor'] = (prev_sx * sx, prev_sy * sy)
        results['img_shape'] = [i.shape[:2] for i in results['img']]
        return results


@TRANSFORMS.register_module()
class OLV2NormalizeMultiViewImage(BaseTransform):
    """(img - mean) / std per channel on RGB images (ImageNet statistics by default)."""

    def __init__(
        self,
        mean: Sequence[float] = tuple(IMAGENET_MEAN_RGB),
        std: Sequence[float] = tuple(IMAGENET_STD_RGB),
    ) -> None:
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        results['img'] = [normalize(i, self.mean, self.std) for i in results['img']]
        results['img_norm_cfg'] = {
            'mean': self.mean.tolist(),
            'std': self.std.tolist(),
            'to_rgb': False,
        }
        return results


@TRANSFORMS.register_module()
class OLV2PadMultiViewImage(BaseTransform):
    """Pads every view (bottom/right) to the common max size rounded up to `size_divisor`."""

    def __init__(self, size_divisor: int = 32) -> None:
        self.size_divisor = size_divisor

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        stacked, (h, w) = pad_views(results['img'], self.size_divisor)
        results['img'] = list(stacked)
        results['pad_shape'] = [(h, w)] * len(stacked)
        return results


@TRANSFORMS.register_module()
class OLV2ParameterizeLane(BaseTransform):
    """GT lanes → end-point-fixed Bézier control points `gt_lc` (L, 3·n_control)."""

    def __init__(self, n_control: int = 5) -> None:
        self.n_control = n_control

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        lanes = results.get('gt_lc_points', [])
        ctrl = [fit_bezier_endpoint_fixed(p, self.n_control).reshape(-1) for p in lanes]
        results['gt_lc'] = np.asarray(ctrl, dtype=np.float32).reshape(
            len(lanes), 3 * self.n_control
        )
        return results


@TRANSFORMS.register_module()
class PackOpenLaneV2Inputs(BaseTransform):
    """`{'inputs': {'img': (7, 3, H, W) tensor}, 'data_samples': Det3DDataSample}` with `meta_keys`
    as metainfo and the ground truth (when present) as tensor fields."""

    META_KEYS = (
        'token', 'scene_token', 'timestamp', 'cam_names', 'img_filename', 'ori_shape', 'img_shape',
        'pad_shape', 'scale_factor', 'lidar2img', 'lidar2cam', 'cam_intrinsic', 'can_bus', 'img_norm_cfg',
    )  # fmt: skip
    GT_KEYS = (
        'gt_lc',
        'gt_lc_labels',
        'gt_te',
        'gt_te_labels',
        'gt_topology_lclc',
        'gt_topology_lcte',
    )

    def __init__(self, meta_keys: Sequence[str] = META_KEYS) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        import torch
        from mmdet3d.structures import Det3DDataSample

        images = np.stack([i.transpose(2, 0, 1) for i in results['img']])
        sample = Det3DDataSample()
        sample.set_metainfo({k: results[k] for k in self.meta_keys if k in results})
        for key in self.GT_KEYS:
            if key in results:
                sample.set_field(torch.from_numpy(np.ascontiguousarray(results[key])), key)
        return {
            'inputs': {'img': torch.from_numpy(np.ascontiguousarray(images))},
            'data_samples': sample,
        }


def default_pipeline(
    train: bool = True, upstream_swap: bool = False, image_scale: float | None = None
) -> list[dict[str, Any]]:
    """The reference pipeline as config dicts (photometric distortion only when training;
    `image_scale` adds `OLV2ScaleMultiViewImage` after loading)."""
    steps: list[dict[str, Any]] = [{'type': 'OLV2LoadMultiViewImages'}]
    if image_scale is not None:
        steps.append({'type': 'OLV2ScaleMultiViewImage', 'scale': image_scale})
    if train:
        steps.append({'type': 'OLV2PhotoMetricDistortion'})
    steps += [
        {'type': 'OLV2ResizeFrontView', 'upstream_swap': upstream_swap},
        {'type': 'OLV2NormalizeMultiViewImage'},
        {'type': 'OLV2PadMultiViewImage', 'size_divisor': 32},
    ]
    if train:
        steps.append({'type': 'OLV2ParameterizeLane', 'n_control': 5})
    steps.append({'type': 'PackOpenLaneV2Inputs'})
    return steps
