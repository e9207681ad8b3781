"""DCNv3 operator benchmark: compiled kernel vs the grid_sample reference, same process, same threads.

Prints one table per mode (forward, forward+backward) with shape, reference ms, kernel ms, speed-up,
peak MB of both, and the kernel's fraction of a measured roofline:
  * fma%  = (minimum time at the machine's measured FMA rate) / kernel time,
  * mem%  = (minimum time to move the compulsory bytes at the measured bandwidth) / kernel time,
where the FMA rate is measured with a float32 matmul and the bandwidth with a large tensor copy, both
on the same thread count in the same run (REFERENCE.md has no machine numbers, so we measure them).
On CUDA it also times the straightforward one-thread-per-channel kernel (upstream's design).

Usage:
    python dcnv3/benchmarks/bench_dcnv3.py                 # CPU, all shapes, torch's thread count
    python dcnv3/benchmarks/bench_dcnv3.py --threads 1 --quick
    python dcnv3/benchmarks/bench_dcnv3.py --device cuda --dtype float16
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

import dcnv3
from dcnv3.reference import dcnv3_reference


@dataclass(frozen=True)
class Shape:
    name: str
    n: int
    h: int
    w: int
    channels: int
    group: int

    @property
    def group_channels(self) -> int:
        return self.channels // self.group


# InternImage-S stage shapes at 224x224 (stage i: 56/2^i, 80*2^i channels, groups 5*2^i), N=1 and 8,
# plus a BEVFormer-size feature map (928x1600 input / 8 = 116x200).
SHAPES = [
    Shape(
        f's{i + 1} {56 >> i}x{56 >> i}x{80 << i} G{5 << i} N{n}',
        n,
        56 >> i,
        56 >> i,
        80 << i,
        5 << i,
    )
    for n in (1, 8)
    for i in range(4)
] + [Shape('bev 116x200x80 G5 N1', 1, 116, 200, 80, 5)]
QUICK = [SHAPES[0], SHAPES[3], SHAPES[4]]

KERNEL = 3
POINTS = KERNEL * KERNEL


def make_inputs(shape: Shape, device: str, dtype: torch.dtype, requires_grad: bool):
    g = torch.Generator(device='cpu').manual_seed(0)
    x = torch.randn(shape.n, shape.h, shape.w, shape.channels, generator=g)
    off = torch.randn(shape.n, shape.h, shape.w, shape.group * POINTS * 2, generator=g) * 2
    mask = torch.rand(shape.n, shape.h, shape.w, shape.group, POINTS, generator=g)
    mask = (mask / mask.sum(-1, keepdim=True)).flatten(-2)
    return [t.to(device=device, dtype=dtype).requires_grad_(requires_grad) for t in (x, off, mask)]


def op_args(shape: Shape) -> tuple:
    return (KERNEL, KERNEL, 1, 1, 1, 1, 1, 1, shape.group, shape.group_channels, 1.0, False)


def sync(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


STAT = {'min': min, 'median': statistics.median}
_stat = min


def time_ms(fn: Callable[[], object], device: str, min_time: float, max_iters: int) -> float:
    fn()  # warm-up (first-call allocations, lazy init)
    sync(device)
    times: list[float] = []
    start_all = time.perf_counter()
    while len(times) < max_iters and (len(times) < 3 or time.perf_counter() - start_all < min_time):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return _stat(times)


def peak_mb(fn: Callable[[], object], device: str) -> float:
    """Peak bytes allocated through torch's allocator while ``fn`` runs (inputs excluded)."""
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == '[memory]']
    events.sort(key=lambda e: e.start_ns())
    current = peak = 0
    for e in events:
        current += e.nbytes()
        peak = max(peak, current)
    return peak / 2**20


def machine_peaks(device: str, dtype: torch.dtype) -> tuple[float, float]:
    """(FMA/s from a matmul, bytes/s from a copy) measured with the current thread count."""
    size = 1024 if device == 'cpu' else 8192
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    t = time_ms(lambda: a @ b, device, 0.5, 20) / 1e3
    fma_rate = size**3 / t
    src = torch.empty(64 * 2**20 // dtype.itemsize, device=device, dtype=dtype).normal_()
    dst = torch.empty_like(src)
    t = time_ms(lambda: dst.copy_(src), device, 0.5, 20) / 1e3
    bandwidth = 2 * src.numel() * src.element_size() / t
    return fma_rate, bandwidth


def work(shape: Shape, backward: bool, itemsize: int) -> tuple[float, float]:
    """(FMAs, compulsory bytes) of one call: 4 bilinear corners per point and channel."""
    pixels = shape.n * shape.h * shape.w
    fmas = pixels * shape.channels * POINTS * 4 * (2 if backward else 1)
    io = pixels * (shape.channels * 2 + shape.group * POINTS * 3)  # in, out, offset, mask
    if backward:  # + grad_output, grad_input, grad_offset, grad_mask
        io += pixels * (shape.channels * 2 + shape.group * POINTS * 3)
    return fmas, io * itemsize


def run(args: argparse.Namespace) -> int:
    global _stat
    _stat = STAT[args.stat]
    device, dtype = args.device, getattr(torch, args.dtype)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not dcnv3.has_compiled_ops():
        print(f'dcnv3 extension not available: {dcnv3.load_error()}', file=sys.stderr)
        return 1
    if device == 'cuda' and not (torch.cuda.is_available() and dcnv3.has_cuda_kernel()):
        print('CUDA benchmark needs a GPU and the CUDA kernel', file=sys.stderr)
        return 1
    fma_rate, bandwidth = machine_peaks(device, dtype if dtype != torch.float64 else torch.float32)
    isa = torch.ops.dcnv3._cpu_isa() if device == 'cpu' else 'cuda'
    print(
        f'# dcnv3 benchmark: device={device} dtype={args.dtype} threads={torch.get_num_threads()} '
        f'cpu-isa={isa} torch={torch.__version__} stat={args.stat}'
    )
    print(
        f'# measured peaks: {fma_rate / 1e9:.1f} GFMA/s (matmul), {bandwidth / 1e9:.1f} GB/s (copy)'
    )
    shapes = QUICK if args.quick else SHAPES
    modes = ['forward', 'forward+backward'] if not args.forward_only else ['forward']
    naive = device == 'cuda'
    for mode in modes:
        backward = mode != 'forward'
        header = (
            f'{"shape":<26} {"ref ms":>9} {"kernel ms":>10} {"speed-up":>9} {"ref MB":>8} '
            f'{"kern MB":>8} {"fma%":>6} {"mem%":>6}'
        )
        if naive:
            header += f' {"naive ms":>9} {"vs naive":>9}'
        print(f'\n## {mode}\n{header}')
        for shape in shapes:
            inputs = make_inputs(shape, device, dtype, backward)
            grad = torch.randn(
                shape.n, shape.h, shape.w, shape.channels, device=device, dtype=dtype
            )

            def call(impl, inputs=inputs, grad=grad, shape=shape, backward=backward):
                out = impl(*inputs, *op_args(shape))
                if backward:
                    torch.autograd.grad(out, inputs, grad)
                return out

            ref_ms = time_ms(lambda: call(dcnv3_reference), device, args.min_time, args.max_iters)
            ker_ms = time_ms(lambda: call(dcnv3.dcnv3), device, args.min_time, args.max_iters)
            ref_mb = peak_mb(lambda: call(dcnv3_reference), device)
            ker_mb = peak_mb(lambda: call(dcnv3.dcnv3), device)
            fmas, nbytes = work(shape, backward, inputs[0].element_size())
            fma_pct = 100 * fmas / fma_rate / (ker_ms / 1e3)
            mem_pct = 100 * nbytes / bandwidth / (ker_ms / 1e3)
            line = (
                f'{shape.name:<26} {ref_ms:9.2f} {ker_ms:10.3f} {ref_ms / ker_ms:8.1f}x '
                f'{ref_mb:8.1f} {ker_mb:8.1f} {fma_pct:6.1f} {mem_pct:6.1f}'
            )
            if naive and not backward:
                naive_op = torch.ops.dcnv3._dcnv3_forward_naive
                nv_ms = time_ms(lambda op=naive_op: call(op), device, args.min_time, args.max_iters)
                line += f' {nv_ms:9.3f} {nv_ms / ker_ms:8.2f}x'
            print(line, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument(
        '--dtype', default='float32', choices=['float32', 'float64', 'float16', 'bfloat16']
    )
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0: keep default)')
    parser.add_argument('--quick', action='store_true', help='3 shapes only')
    parser.add_argument('--forward-only', action='store_true')
    parser.add_argument('--min-time', type=float, default=1.0, help='seconds per measurement')
    parser.add_argument('--max-iters', type=int, default=50)
    parser.add_argument(
        '--stat',
        default='min',
        choices=sorted(STAT),
        help='estimator over repetitions; min is robust to other load on a shared machine',
    )
    return run(parser.parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
