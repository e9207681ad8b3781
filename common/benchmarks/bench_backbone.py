"""InternImage-T/-S inference throughput: compiled DCNv3 vs the pure-PyTorch op, vs ConvNeXt-T/-S.

    python common/benchmarks/bench_backbone.py [--size 224] [--batch 2] [--iters 5] [--threads N]
                                               [--device cpu|cuda] [--quick] [--json out.json]

All models are built in this run on the same device/threads; the table gives images/s and ratios
against ConvNeXt of the same size and against the reference op. ConvNeXt is the minimal
re-implementation in ``convnext_reference.py`` (timm cannot be imported here, see that file); its
parameter counts are checked against the published ones before timing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convnext_reference import PUBLISHED_PARAMS, convnext_small, convnext_tiny

import dcnv3
from interndrive.common.backbones import create_internimage
from interndrive.common.engine.atomic_files import atomic_write_text

PAIRS = (('convnext_tiny', 'internimage_t'), ('convnext_small', 'internimage_s'))


def _internimage(name: str, core_op: str) -> nn.Module:
    model = create_internimage(name, core_op=core_op)
    # Non-zero offsets/mask logits, as in a trained model (they are zero at init, which would let
    # every sample fall on integer pixels and flatter bilinear sampling).
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module_name, p in model.named_parameters():
            if module_name.endswith(('dcn.offset.weight', 'dcn.mask.weight')):
                p.copy_(0.02 * torch.randn(p.shape, generator=gen))
    return model


def time_model(
    model: nn.Module,
    x: torch.Tensor,
    warmup: int,
    iters: int,
    train: bool = False,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Median seconds per forward pass (``train``: forward + backward of the summed logits)."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    times = []
    for i in range(warmup + iters):
        sync()
        t0 = clock()
        if train:
            model.zero_grad(set_to_none=True)
            model(x).float().sum().backward()
        else:
            with torch.inference_mode():
                model(x)
        sync()
        if i >= warmup:
            times.append(clock() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--size', type=int, default=224, help='input resolution (default 224)')
    p.add_argument('--batch', type=int, default=2, help='images per forward pass')
    p.add_argument(
        '--iters', type=int, default=5, help='timed iterations per model (median is reported)'
    )
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument(
        '--clock',
        choices=('wall', 'cpu'),
        default='wall',
        help="'cpu' measures process CPU time (robust on a machine shared with other jobs; "
        'seconds summed over threads, so use it with --threads 1)',
    )
    p.add_argument(
        '--train',
        action='store_true',
        help='time forward + backward (train mode) instead of inference',
    )
    p.add_argument(
        '--threads', type=int, default=None, help='torch.set_num_threads (default: torch default)'
    )
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument(
        '--quick', action='store_true', help='smoke run: 64×64, 1 warm-up + 1 timed iteration'
    )
    p.add_argument(
        '--json', type=Path, default=None, help='also write the rows as JSON (atomically)'
    )
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.iters, args.warmup = 64, 1, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.clock == 'cpu' and device.type != 'cpu':
        raise SystemExit('--clock cpu only makes sense with --device cpu')
    clock = time.process_time if args.clock == 'cpu' else time.perf_counter
    compiled = dcnv3.has_compiled_ops() and (device.type != 'cuda' or dcnv3.has_cuda_kernel())
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)

    builders: list[tuple[str, str, Callable[[], nn.Module] | None]] = []
    for convnext, intern in PAIRS:
        builders.append(
            (
                convnext,
                'dense conv (minimal ConvNeXt)',
                convnext_tiny if 'tiny' in convnext else convnext_small,
            )
        )
        builders.append(
            (
                intern,
                'DCNv3 compiled',
                (lambda n=intern: _internimage(n, 'DCNv3')) if compiled else None,
            )
        )
        builders.append(
            (intern, 'DCNv3_pytorch reference', lambda n=intern: _internimage(n, 'DCNv3_pytorch'))
        )

    # Build everything first, then time round-robin (one forward per model per round) so that load
    # from other processes on a shared machine hits all models alike instead of whichever ran last.
    rows, models = [], {}
    for name, op, build in builders:
        row: dict = {'model': name, 'op': op}
        rows.append(row)
        if build is None:
            row['note'] = (
                f'dcnv3 not compiled ({dcnv3.load_error() or "no kernel for " + device.type})'
            )
            continue
        torch.manual_seed(0)
        model = build().train(args.train).to(device)
        n_params = sum(q.numel() for q in model.parameters())
        if name in PUBLISHED_PARAMS and n_params != PUBLISHED_PARAMS[name]:
            raise SystemExit(
                f'{name}: {n_params} parameters, published {PUBLISHED_PARAMS[name]}: baseline is wrong'
            )
        row['params_m'] = n_params / 1e6
        models[id(row)] = model
    times: dict[int, list[float]] = {key: [] for key in models}
    for i in range(args.warmup + args.iters):
        for row in rows:
            if id(row) in models:
                sec = time_model(
                    models[id(row)], x, warmup=0, iters=1, train=args.train, clock=clock
                )
                if i >= args.warmup:
                    times[id(row)].append(sec)
    for row in rows:
        if id(row) in models:
            sec = statistics.median(times[id(row)])
            row.update(
                ms_per_batch=1e3 * sec,
                images_per_s=args.batch / sec,
                best_ms=1e3 * min(times[id(row)]),
            )
    del models

    def ips(model: str, op_prefix: str) -> float | None:
        for r in rows:
            if r['model'] == model and r['op'].startswith(op_prefix) and 'images_per_s' in r:
                return r['images_per_s']
        return None

    for r in rows:
        if 'images_per_s' not in r:
            continue
        pair = next(c for c, i in PAIRS if r['model'] in (c, i))
        r['vs_convnext'] = r['images_per_s'] / ips(pair, 'dense')
        ref = ips(r['model'], 'DCNv3_pytorch')
        r['vs_reference_op'] = (
            r['images_per_s'] / ref if ref and r['model'].startswith('internimage') else None
        )

    print(
        f'# backbone {"training (fwd+bwd)" if args.train else "inference"} throughput: {args.size}×{args.size}, batch {args.batch}, {args.iters} round-robin iters (median), {args.clock} clock, '
        f'device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}'
    )
    header = (
        f'{"model":<16}{"op":<31}{"params M":>9}{"ms/batch":>10}{"best ms":>9}{"img/s":>9}'
        f'{"× ConvNeXt":>12}{"× ref op":>10}'
    )
    print(header)
    print('-' * len(header))
    for r in rows:
        if 'images_per_s' not in r:
            print(f'{r["model"]:<16}{r["op"]:<31}  {r["note"]}')
            continue
        vs_ref = f'{r["vs_reference_op"]:.2f}' if r['vs_reference_op'] else '-'
        print(
            f'{r["model"]:<16}{r["op"]:<31}{r["params_m"]:>9.2f}{r["ms_per_batch"]:>10.1f}{r["best_ms"]:>9.1f}'
            f'{r["images_per_s"]:>9.2f}{r["vs_convnext"]:>12.2f}{vs_ref:>10}'
        )
    if args.json is not None:
        report = {'args': {k: str(v) for k, v in vars(args).items()}, 'rows': rows}
        atomic_write_text(args.json, json.dumps(report, indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
