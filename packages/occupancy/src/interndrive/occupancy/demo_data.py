"""Ready-to-train synthetic data for the demo and tests: generate + convert in one call."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from interndrive.occupancy.converter import create_occ_infos
from interndrive.occupancy.synthetic import generate_synthetic_dataset


@dataclass(frozen=True)
class DemoData:
    """Where the demo data lies: `root` is the nuScenes data root, CAN bus root and Occ3D root."""

    root: Path
    train_infos: Path
    val_infos: Path
    val_tokens: tuple[str, ...]


def make_demo_data(
    work_dir: str | os.PathLike[str],
    num_scenes: int = 2,
    samples_per_scene: int = 3,
    image_size: tuple[int, int] = (128, 72),
    seed: int = 0,
) -> DemoData:
    """Writes a synthetic v1.0-mini dataset under `<work_dir>/data` and its info pickles.

    Args:
        work_dir: Demo folder; the data goes to `<work_dir>/data`.
        num_scenes: Scenes (alternately mini_train and mini_val; at least 2 for both splits).
        samples_per_scene: Key frames per scene.
        image_size: Camera image (width, height).
        seed: Object layout seed.
    """
    root = Path(work_dir) / 'data'
    generate_synthetic_dataset(root, 'v1.0-mini', num_scenes, samples_per_scene, image_size, seed)
    written = create_occ_infos(root, root, version='v1.0-mini')
    from interndrive.occupancy.formats import load_infos

    val_tokens = tuple(info['token'] for info in load_infos(written['val'])['infos'])
    return DemoData(root, written['train'], written['val'], val_tokens)
