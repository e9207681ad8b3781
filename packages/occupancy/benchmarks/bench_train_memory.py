"""Peak CPU memory of one BEVFormer-Occ training step (the issue's memory goal).

Each case runs in a fresh subprocess (peak RSS is per process): build the model from a config,
load one training queue from a generated synthetic dataset, then one optimizer step (forward with
history frames, backward, AdamW). Reported: RSS before the step (imports + model + data), peak RSS
over the step, and the increase; the ratio column compares the full config's step increase with the
first full-config row measured in the same run (gradient checkpointing off = baseline). Exits with
status 1 if gradient checkpointing changes the loss or the gradient norm (it must only trade memory
for recomputation).

    python packages/occupancy/benchmarks/bench_train_memory.py [--image-width 320 --bev 50 --queue 2]

CPU only (no GPU here): the numbers are host memory, not GPU memory; see the README for how they
relate to the published 14 GB (8 GPUs, 1600×928 images, 200×200 BEV, queue 4).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parents[1] / 'configs'


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run_case(args: argparse.Namespace) -> dict:
    """One training step in this process; returns the measurements."""
    import numpy as np
    import torch
    from mmdet3d.registry import DATASETS, MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import interndrive.occupancy.registration  # noqa: F401

    init_default_scope('mmdet3d')
    # Every RNG the step touches (model init, GridMask/DropPath: torch; photometric distortion: numpy),
    # so that the with_cp rows see the same data and the same random draws.
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002  (the transform draws from the legacy global RNG)
    torch.manual_seed(0)
    cfg = Config.fromfile(str(CONFIG_DIR / f'{args.config}.py'))
    if args.bev:
        cfg.model.bev_constructor.bev_h = cfg.model.bev_constructor.bev_w = args.bev
    if args.with_cp is not None and 'with_cp' in cfg.model.img_backbone:
        cfg.model.img_backbone.with_cp = args.with_cp == 'on'
    cfg.model.img_backbone.pop('init_cfg', None)
    dataset_cfg = dict(cfg.train_dataloader.dataset, data_root=args.data_root)
    dataset_cfg['queue_length'] = args.queue
    model = MODELS.build(cfg.model)
    model.train()
    item = DATASETS.build(dataset_cfg)[1]
    data = model.data_preprocessor(
        {'inputs': {'img': [item['inputs']['img']]}, 'data_samples': [item['data_samples']]}, True
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    before = _rss_mib()
    tick = time.perf_counter()
    loss = model(**data, mode='loss')['loss_occ']
    loss.backward()
    grad_norm = torch.linalg.vector_norm(
        torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None])
    )
    optimizer.step()
    seconds = time.perf_counter() - tick
    peak = _rss_mib()
    return {
        'config': args.config,
        'bev': cfg.model.bev_constructor.bev_h,
        'image': tuple(data['inputs']['img'][0].shape[-2:]),
        'queue': args.queue,
        'with_cp': cfg.model.img_backbone.get('with_cp', False),
        'params_M': sum(p.numel() for p in model.parameters()) / 1e6,
        'rss_before_MiB': before,
        'peak_MiB': peak,
        'step_increase_MiB': peak - before,
        'step_s': seconds,
        'loss': float(loss),
        'grad_norm': float(grad_norm),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--image-width', type=int, default=320, help='synthetic image width (16:9)')
    parser.add_argument('--bev', type=int, default=50, help='BEV size of the full config')
    parser.add_argument('--queue', type=int, default=2, help='frames per training queue')
    parser.add_argument('--case', help=argparse.SUPPRESS)  # JSON: run one case, print JSON
    args = parser.parse_args()
    if args.case:
        case = argparse.Namespace(**json.loads(args.case))
        print(json.dumps(run_case(case)))
        return 0

    from interndrive.occupancy.converter import create_occ_infos
    from interndrive.occupancy.synthetic import generate_synthetic_dataset

    with tempfile.TemporaryDirectory() as tmp:
        small, large = Path(tmp) / 'small', Path(tmp) / 'large'
        generate_synthetic_dataset(small, num_scenes=2, samples_per_scene=3, image_size=(128, 72))
        create_occ_infos(small, small, version='v1.0-mini')
        height = round(args.image_width * 9 / 16)
        generate_synthetic_dataset(
            large, num_scenes=2, samples_per_scene=3, image_size=(args.image_width, height)
        )
        create_occ_infos(large, large, version='v1.0-mini')
        cases = [
            dict(config='bevformer_tiny_occ_cpu', bev=None, queue=2, with_cp=None,
                 data_root=str(small)),
            dict(config='bevformer_intern-s_occ', bev=args.bev, queue=args.queue, with_cp='off',
                 data_root=str(large)),
            dict(config='bevformer_intern-s_occ', bev=args.bev, queue=args.queue, with_cp='on',
                 data_root=str(large)),
        ]  # fmt: skip
        rows = []
        for case in cases:
            out = subprocess.run(
                [sys.executable, __file__, '--case', json.dumps(case)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    baseline = rows[1]['step_increase_MiB']
    print(
        '| config | BEV | image (padded) | queue | with_cp | params (M) | RSS before (MiB) '
        '| peak RSS (MiB) | step increase (MiB) | ratio | step (s) | loss | grad norm |'
    )
    print('|---|---|---|---|---|---|---|---|---|---|---|---|---|')
    for i, row in enumerate(rows):
        ratio = f'{row["step_increase_MiB"] / baseline:.2f}' if i else '–'
        print(
            f'| {row["config"]} | {row["bev"]}×{row["bev"]} | {row["image"][1]}×{row["image"][0]} '
            f'| {row["queue"]} | {row["with_cp"]} | {row["params_M"]:.2f} '
            f'| {row["rss_before_MiB"]:.0f} | {row["peak_MiB"]:.0f} '
            f'| {row["step_increase_MiB"]:.0f} | {ratio} | {row["step_s"]:.1f} '
            f'| {row["loss"]:.6f} | {row["grad_norm"]:.6f} |'
        )
    # Gradient checkpointing trades memory for recomputation; it must not change the step.
    plain, checkpointed = rows[1], rows[2]
    if plain['loss'] != checkpointed['loss'] or not math.isclose(
        plain['grad_norm'], checkpointed['grad_norm'], rel_tol=1e-4
    ):
        print('FAILED: with_cp changed the loss or the gradients', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
