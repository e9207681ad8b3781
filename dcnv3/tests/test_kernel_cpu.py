"""Compiled CPU kernel against the reference: values, gradients, dtypes, edge cases, opcheck."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from dcnv3_test_utils import Config, requires_ops

import dcnv3
from dcnv3.reference import dcnv3_reference

pytestmark = requires_ops

# Covers: groups 1..8, group_channels 1/3/16/30/64, kernels 1/3/5 and non-square, stride 1/2,
# pad 0/1/2, dilation 1/2, offset_scale 0.5/1/2, remove_center on/off, far-outside offsets, N>1.
CONFIGS = [
    Config(),
    Config(group=1, group_channels=1),
    Config(group=3, group_channels=3, offset_scale=0.5),
    Config(group=4, group_channels=16, offset_scale=2.0),
    Config(group=5, group_channels=30, remove_center=True),
    Config(group=2, group_channels=64, kernel_h=5, kernel_w=5, pad_h=2, pad_w=2),
    Config(group=6, group_channels=8, kernel_h=1, kernel_w=1, pad_h=0, pad_w=0),
    Config(group=7, group_channels=2, kernel_h=3, kernel_w=5, pad_h=0, pad_w=2, n=3),
    Config(group=8, group_channels=4, stride_h=2, stride_w=2, h=9, w=8),
    Config(group=2, group_channels=16, dilation_h=2, dilation_w=2, pad_h=2, pad_w=2),
    Config(
        group=2,
        group_channels=3,
        kernel_h=5,
        kernel_w=3,
        stride_h=2,
        pad_h=2,
        pad_w=0,
        dilation_w=2,
        offset_scale=2.0,
        remove_center=True,
    ),
    Config(group=3, group_channels=16, offset_std=20.0),  # most samples outside the image
    Config(group=1, group_channels=40, h=4, w=11, kernel_h=3, kernel_w=2, pad_h=1, pad_w=0),
    Config(group=2, group_channels=24, offset_std=0.0),  # integer sample positions
]
IDS = [f'cfg{i}' for i in range(len(CONFIGS))]
TOL = {
    torch.float64: dict(rtol=1e-10, atol=1e-10),
    torch.float32: dict(rtol=1e-4, atol=1e-5),
    torch.bfloat16: dict(rtol=2e-2, atol=2e-2),
    torch.float16: dict(rtol=5e-3, atol=5e-3),
}


def _forward_backward(fn, cfg: Config, inputs: list[torch.Tensor], grad: torch.Tensor):
    out = fn(*inputs, *cfg.args())
    grads = torch.autograd.grad(out, inputs, grad)
    return (out, *grads)


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
@pytest.mark.parametrize('cfg', CONFIGS, ids=IDS)
def test_kernel_matches_reference(cfg: Config, dtype: torch.dtype) -> None:
    inputs = cfg.inputs(dtype, requires_grad=True)
    ho, wo = cfg.out_hw
    grad = torch.randn(cfg.n, ho, wo, cfg.group * cfg.group_channels, dtype=dtype)
    expected = _forward_backward(dcnv3_reference, cfg, inputs, grad)
    actual = _forward_backward(dcnv3.dcnv3, cfg, inputs, grad)
    for name, a, e in zip(('output', 'grad_input', 'grad_offset', 'grad_mask'), actual, expected):
        if name == 'grad_offset' and cfg.offset_std == 0:
            # Integer sample positions are kinks of bilinear interpolation: the kernels take upstream
            # CUDA's one-sided derivative (and treat loc == -1 as outside), grid_sample another one.
            continue
        torch.testing.assert_close(a, e, **TOL[dtype], msg=lambda m, name=name: f'{name}: {m}')


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_reduced_precision_accumulates_in_float(dtype: torch.dtype) -> None:
    cfg = Config(group=2, group_channels=16)
    inputs = cfg.inputs(torch.float64)
    # 16-bit offsets land on integers (kinks of bilinear interpolation) often; keep them at +0.375,
    # which 16-bit types represent exactly for these magnitudes.
    inputs[1] = torch.round(inputs[1]) + 0.375
    ho, wo = cfg.out_hw
    grad = torch.randn(cfg.n, ho, wo, 32, dtype=torch.float64).to(dtype)
    # Round inputs to the low-precision grid first so only the kernel's own error is measured.
    low = [t.detach().to(dtype).requires_grad_() for t in inputs]
    expected = _forward_backward(
        dcnv3_reference, cfg, [t.detach().double().requires_grad_() for t in low], grad.double()
    )
    actual = _forward_backward(dcnv3.dcnv3, cfg, low, grad)
    assert actual[0].dtype == dtype
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a.double(), e, **TOL[dtype])


@pytest.mark.parametrize('n', [0, 1, 5])
def test_batch_sizes(n: int) -> None:
    cfg = Config(n=n, group=2, group_channels=8)
    inputs = cfg.inputs(requires_grad=True)
    out = dcnv3.dcnv3(*inputs, *cfg.args())
    assert out.shape == (n, 7, 6, 16)
    torch.testing.assert_close(out, dcnv3_reference(*inputs, *cfg.args()))
    out.sum().backward()
    assert all(t.grad is not None and t.grad.shape == t.shape for t in inputs)


def test_non_contiguous_inputs() -> None:
    cfg = Config(group=2, group_channels=8)
    x, off, mask = cfg.inputs()
    # Same values, transposed storage (channels-first memory viewed as channels-last).
    x_nc = x.permute(0, 3, 1, 2).contiguous().permute(0, 2, 3, 1)
    off_nc = torch.cat([off, off], dim=-1)[..., : off.shape[-1]]
    assert not x_nc.is_contiguous() and not off_nc.is_contiguous()
    torch.testing.assert_close(
        dcnv3.dcnv3(x_nc, off_nc, mask, *cfg.args()), dcnv3_reference(x, off, mask, *cfg.args())
    )


@pytest.mark.parametrize('threads', [1, 2])
def test_backward_thread_partitioning(threads: int) -> None:
    """N < threads uses per-thread grad_input buffers, N >= threads per-image ownership."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        for n in (1, 3):
            cfg = Config(n=n, h=12, w=10, group=2, group_channels=16, offset_std=3.0)
            inputs = cfg.inputs(requires_grad=True)
            grad = torch.randn(n, 12, 10, 32, dtype=torch.float64)
            expected = _forward_backward(dcnv3_reference, cfg, inputs, grad)
            actual = _forward_backward(dcnv3.dcnv3, cfg, inputs, grad)
            for a, e in zip(actual, expected):
                torch.testing.assert_close(a, e)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    'cfg',
    [
        Config(n=1, h=4, w=5, group=2, group_channels=3),
        Config(
            n=2,
            h=4,
            w=4,
            group=1,
            group_channels=2,
            kernel_h=3,
            kernel_w=2,
            stride_h=2,
            pad_w=0,
            remove_center=True,
            offset_scale=0.5,
        ),
    ],
    ids=['square', 'strided-remove-center'],
)
def test_gradcheck(cfg: Config) -> None:
    inputs = cfg.inputs(torch.float64, requires_grad=True, seed=1)
    # Keep samples away from integer coordinates, where bilinear interpolation has kinks.
    with torch.no_grad():
        inputs[1].copy_(torch.round(inputs[1]) + 0.37)
    assert torch.autograd.gradcheck(
        lambda *t: dcnv3.dcnv3(*t, *cfg.args()), inputs, eps=1e-6, atol=1e-5
    )


def test_opcheck() -> None:
    cfg = Config(n=2, h=5, w=4, group=2, group_channels=4)
    inputs = cfg.inputs(torch.float32, requires_grad=True)
    args = (*inputs, *cfg.args())
    torch.library.opcheck(torch.ops.dcnv3.dcnv3_forward.default, args)
    grad = torch.randn(2, 5, 4, 8)
    torch.library.opcheck(
        torch.ops.dcnv3.dcnv3_backward.default,
        (grad, *[t.detach() for t in inputs], *cfg.args()),
    )


def test_cpu_isa_variants_agree() -> None:
    """Every instruction-set variant this CPU supports gives the same result (run in subprocesses,
    because the variant is chosen once per process)."""
    script = (
        'import torch, dcnv3, sys\n'
        'sys.path.insert(0, sys.argv[1])\n'
        'from dcnv3_test_utils import Config\n'
        'cfg = Config(group=3, group_channels=19)\n'
        'x, off, mask = cfg.inputs(torch.float32)\n'
        'out = dcnv3.dcnv3(x, off, mask, *cfg.args())\n'
        'print(torch.ops.dcnv3._cpu_isa(), repr(out.double().sum().item()))\n'
    )
    results = {}
    for isa in ('default', 'avx2', 'avx512'):
        env = dict(os.environ, DCNV3_CPU_ISA=isa, PYTHONPATH=os.pathsep.join(sys.path))
        proc = subprocess.run(
            [sys.executable, '-c', script, str(Path(__file__).parent)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        chosen, total = proc.stdout.split()
        results[chosen] = float(total)
    assert 'default' in results
    values = list(results.values())
    assert max(values) - min(values) <= 1e-4 * abs(values[0]), results


def _random_configs(count: int, seed: int) -> list[Config]:
    rng = torch.Generator().manual_seed(seed)

    def pick(options):
        return options[int(torch.randint(len(options), (1,), generator=rng))]

    configs = []
    while len(configs) < count:
        kh, kw = pick([1, 2, 3, 5]), pick([1, 3, 4, 5])
        cfg = Config(
            n=pick([1, 2, 3]),
            h=pick([3, 6, 9]),
            w=pick([4, 7, 10]),
            group=pick(range(1, 9)),
            group_channels=pick([1, 3, 7, 8, 16, 30, 32, 64]),
            kernel_h=kh,
            kernel_w=kw,
            stride_h=pick([1, 2]),
            stride_w=pick([1, 2]),
            pad_h=pick([0, 1, 2]),
            pad_w=pick([0, 1, 2]),
            dilation_h=pick([1, 2]),
            dilation_w=pick([1, 2]),
            offset_scale=pick([0.5, 1.0, 2.0]),
            remove_center=kh * kw > 1 and pick([False, True]),
            offset_std=pick([0.5, 2.0, 8.0]),
        )
        if min(cfg.out_hw) > 0:
            configs.append(cfg)
    return configs


@pytest.mark.slow
@pytest.mark.parametrize('cfg', _random_configs(120, seed=7), ids=lambda c: '')
def test_random_sweep_float64(cfg: Config) -> None:
    inputs = cfg.inputs(torch.float64, requires_grad=True, seed=11)
    ho, wo = cfg.out_hw
    grad = torch.randn(cfg.n, ho, wo, cfg.group * cfg.group_channels, dtype=torch.float64)
    expected = _forward_backward(dcnv3_reference, cfg, inputs, grad)
    actual = _forward_backward(dcnv3.dcnv3, cfg, inputs, grad)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, **TOL[torch.float64])


def test_non_finite_offsets_drop_the_point() -> None:
    """NaN/inf offsets put a sample outside the image: it contributes nothing (as upstream CUDA)."""
    cfg = Config(group=2, group_channels=8)
    x, off, mask = cfg.inputs(torch.float64)
    bad = off.clone()
    bad[0, 1, 2, 0] = float('nan')
    bad[1, 3, 4, 5] = float('inf')
    bad[0, 4, 1, 8] = -float('inf')
    far = torch.where(torch.isfinite(bad), bad, torch.full_like(bad, 1e6))
    ho, wo = cfg.out_hw
    grad = torch.randn(cfg.n, ho, wo, 16, dtype=torch.float64)
    inputs = [t.clone().requires_grad_() for t in (x, bad, mask)]
    actual = _forward_backward(dcnv3.dcnv3, cfg, inputs, grad)
    expected = _forward_backward(
        dcnv3_reference, cfg, [t.clone().requires_grad_() for t in (x, far, mask)], grad
    )
    for a, e in zip(actual, expected):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, e)
