"""The main job of the quick start (`nox -s demo`): every installed piece of interndrive, end to end, on
generated data, saying what it ran and what it measured.

Stages:
1. the environment (`interndrive info`);
2. the DCNv3 operator: compiled CPU kernel vs the pure-PyTorch reference at an InternImage-S stage shape
   (agreement and speed, forward and forward+backward);
3. the InternImage backbone: stage features of InternImage-T on a 224×224 image (parameter count, time);
4. each installed task's own demo (`interndrive demo TASK`: synthetic data → a few training iterations →
   evaluation table → submission → PNG). A task that has no demo yet is reported as such, never faked.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch


def banner(title: str) -> None:
    print(f'\n{"=" * 100}\n{title}\n{"=" * 100}', flush=True)


def _time(fn, repeats: int = 5) -> float:
    fn()  # warm-up (allocations, first-call dispatch)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1e3


def stage_environment() -> None:
    banner('1/4 environment: interndrive info')
    subprocess.run(['interndrive', 'info'], check=True)


def stage_dcnv3() -> dict:
    import dcnv3
    from dcnv3.reference import dcnv3_reference

    banner(
        '2/4 DCNv3 operator: compiled CPU kernel vs pure-PyTorch reference (InternImage-S stage 1 shape)'
    )
    if not dcnv3.has_compiled_ops():
        print(
            'dcnv3 has no compiled kernel in this environment: only the reference would run; skipping.'
        )
        return {'compiled': False}
    torch.manual_seed(0)
    n, h, w, groups, group_channels = 1, 56, 56, 5, 16
    x = torch.randn(n, h, w, groups * group_channels, requires_grad=True)
    offset = (torch.randn(n, h, w, groups * 9 * 2) * 2).requires_grad_()
    mask = torch.softmax(torch.randn(n, h, w, groups, 9), -1).flatten(3).requires_grad_()
    args = (3, 3, 1, 1, 1, 1, 1, 1, groups, group_channels, 1.0)

    out_kernel = dcnv3.dcnv3(x, offset, mask, *args)
    out_ref = dcnv3_reference(x, offset, mask, *args)
    max_err = (out_kernel - out_ref).abs().max().item()

    def fwd(op):
        with torch.no_grad():
            op(x, offset, mask, *args)

    def fwd_bwd(op):
        op(x, offset, mask, *args).sum().backward()

    result = {
        'compiled': True,
        'shape': f'N={n} {h}x{w} G={groups} Cg={group_channels}',
        'threads': torch.get_num_threads(),
        'max_abs_diff_vs_reference': max_err,
        'forward_ms': {
            'reference': _time(lambda: fwd(dcnv3_reference)),
            'kernel': _time(lambda: fwd(dcnv3.dcnv3)),
        },
        'forward_backward_ms': {
            'reference': _time(lambda: fwd_bwd(dcnv3_reference)),
            'kernel': _time(lambda: fwd_bwd(dcnv3.dcnv3)),
        },
    }
    for key in ('forward_ms', 'forward_backward_ms'):
        times = result[key]
        print(
            f'{key:<22} reference {times["reference"]:8.2f} ms   kernel {times["kernel"]:8.2f} ms   '
            f'speed-up {times["reference"] / times["kernel"]:5.1f}x'
        )
    print(f'max |kernel - reference| = {max_err:.2e} (float32), threads = {result["threads"]}')
    if max_err > 1e-4:
        raise SystemExit(f'dcnv3 kernel disagrees with the reference: {max_err}')
    return result


def stage_backbone() -> dict:
    from interndrive.common.backbones import internimage_t

    banner('3/4 InternImage-T backbone: pre-downsample stage features of a 224x224 image')
    torch.manual_seed(0)
    model = internimage_t(num_classes=0, out_indices=(0, 1, 2, 3)).eval()
    params = sum(p.numel() for p in model.parameters())
    image = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        feats = model(image)
        ms = _time(lambda: model(image), repeats=3)
    shapes = [tuple(f.shape) for f in feats]
    print(
        f'parameters (no head): {params / 1e6:.2f}M   forward: {ms:.0f} ms   stage outputs: {shapes}'
    )
    return {'params': params, 'forward_ms': ms, 'shapes': shapes}


def stage_tasks(work_dir: Path) -> dict:
    from interndrive.common.tasks import discover_tasks

    banner('4/4 task demos: synthetic data -> training -> evaluation -> submission -> PNG')
    results: dict = {}
    tasks = discover_tasks()
    for name in ('occupancy', 'hdmap', 'openlane'):
        task = tasks.get(name)
        if task is None:
            print(f'[{name}] not installed: skipped')
            results[name] = 'not installed'
            continue
        if task.demo is None:
            print(
                f'[{name}] this version has no end-to-end demo for the task (no model yet): skipped'
            )
            results[name] = 'no demo'
            continue
        print(f'[{name}] interndrive demo {name} --work-dir {work_dir / name}', flush=True)
        start = time.perf_counter()
        subprocess.run(
            ['interndrive', 'demo', name, '--work-dir', str(work_dir / name)], check=True
        )
        results[name] = {'seconds': round(time.perf_counter() - start, 1)}
        print(f'[{name}] finished in {results[name]["seconds"]} s')
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', type=Path, default=Path('work_dirs/demo'))
    args = parser.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    stage_environment()
    summary = {
        'dcnv3': stage_dcnv3(),
        'backbone': stage_backbone(),
        'tasks': stage_tasks(args.work_dir),
    }
    summary['total_seconds'] = round(time.perf_counter() - start, 1)
    out = args.work_dir / 'demo_summary.json'
    out.write_text(json.dumps(summary, indent=2, default=str))
    banner(f'demo finished in {summary["total_seconds"]} s; summary: {out}')
    print(json.dumps(summary['tasks'], indent=2, default=str))


if __name__ == '__main__':
    sys.exit(main())
