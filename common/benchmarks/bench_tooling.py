"""Costs of the tooling's reliability features, each against its plain baseline in the same run.

    python common/benchmarks/bench_tooling.py [--size-mb 64] [--repeat 3]

- checkpoint write: `torch.save` to the final path (baseline, no fsync: data may still sit in the
  page cache) vs `atomic_torch_save` (temp file + fsync + os.replace; the fsync is most of the cost);
- per-iteration reseeding of Python/NumPy/torch (ResumableEpochBasedTrainLoop) vs one training step
  of a tiny conv net (1x3x64x64; a real BEVFormer step is >1000x longer, so this bounds the overhead);
- building the scene-contiguous test sampler for a nuScenes-val-sized set (6019 frames, 150 scenes)
  on 8 ranks vs mmengine's DefaultSampler.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch


def _best_of(func: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_checkpoint_write(size_mb: int, repeat: int) -> tuple[float, float]:
    from interndrive.common.engine.atomic_io import atomic_torch_save

    state = {'state_dict': {'w': torch.randn(size_mb * 1024 * 1024 // 4)}}
    with tempfile.TemporaryDirectory(dir=os.getcwd()) as folder:
        target = Path(folder) / 'ckpt.pth'
        plain = _best_of(lambda: torch.save(state, target), repeat)
        atomic = _best_of(lambda: atomic_torch_save(state, target), repeat)
    return plain, atomic


def bench_reseed(repeat: int) -> tuple[float, float]:
    """Reseeding cost vs one train step of a deliberately tiny conv net (an upper bound on overhead)."""
    from interndrive.common.engine.seeding import seed_everything, step_seed

    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 1, 1)
    )
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    x = torch.randn(1, 3, 64, 64)
    n = 200

    def steps() -> None:
        for _ in range(n):
            opt.zero_grad()
            net(x).mean().backward()
            opt.step()

    def reseeds() -> None:
        for i in range(n):
            seed_everything(step_seed(7, i, 0))

    return _best_of(steps, repeat) / n, _best_of(reseeds, repeat) / n


class _ScenesDataset:
    def __init__(self, frames: int = 6019, scenes: int = 150) -> None:
        per = frames // scenes
        self.ids = [min(i // per, scenes - 1) for i in range(frames)]

    def __len__(self) -> int:
        return len(self.ids)

    def get_scene_ids(self) -> list[int]:
        return self.ids


def bench_sampler(repeat: int) -> tuple[float, float]:
    from mmengine.dataset import DefaultSampler

    from interndrive.common.engine.samplers import SceneContiguousSampler

    ds = _ScenesDataset()
    default = _best_of(
        lambda: [list(DefaultSampler(ds, shuffle=False, seed=0)) for _ in range(8)], repeat
    )
    scene = _best_of(
        lambda: [list(SceneContiguousSampler(ds, rank=r, world_size=8)) for r in range(8)], repeat
    )
    return default, scene


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--size-mb', type=int, default=64, help='checkpoint size (InternImage-S ~200 MB)'
    )
    parser.add_argument('--repeat', type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)

    rows = []
    plain, atomic = bench_checkpoint_write(args.size_mb, args.repeat)
    rows.append(
        (f'checkpoint write {args.size_mb} MB', 'torch.save', plain, 'atomic_torch_save', atomic)
    )
    empty, reseed = bench_reseed(args.repeat)
    rows.append(('per-iteration reseed', 'tiny conv step', empty, 'reseed (py/np/torch)', reseed))
    default, scene = bench_sampler(args.repeat)
    rows.append(
        ('test sampler, 6019 frames x 8 ranks', 'DefaultSampler', default, 'SceneContiguous', scene)
    )

    print(
        f'| {"what":<36} | {"baseline":<16} | {"time":>10} | {"ours":<20} | {"time":>10} | {"ratio":>6} |'
    )
    print(f'|{"-" * 38}|{"-" * 18}|{"-" * 12}|{"-" * 22}|{"-" * 12}|{"-" * 8}|')
    for what, base_name, base, ours_name, ours in rows:
        ratio = ours / base if base > 0 else float('inf')
        print(
            f'| {what:<36} | {base_name:<16} | {_fmt(base):>10} | {ours_name:<20} | '
            f'{_fmt(ours):>10} | {ratio:>6.2f} |'
        )


def _fmt(seconds: float) -> str:
    if seconds >= 1:
        return f'{seconds:.2f} s'
    if seconds >= 1e-3:
        return f'{seconds * 1e3:.1f} ms'
    return f'{seconds * 1e6:.1f} us'


if __name__ == '__main__':
    main()
