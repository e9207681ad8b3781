"""CUDA kernel tests (run with `pytest dcnv3/tests -m cuda` on a GPU machine)."""

from __future__ import annotations

import pytest
import torch
from dcnv3_test_utils import Config, requires_cuda

import dcnv3
from dcnv3.reference import dcnv3_reference

pytestmark = [pytest.mark.cuda, requires_cuda]

CONFIGS = [
    Config(group=4, group_channels=16),
    Config(group=2, group_channels=1),
    Config(group=3, group_channels=3, offset_scale=0.5, remove_center=True),
    Config(group=5, group_channels=30, kernel_h=5, kernel_w=3, pad_h=2, stride_w=2),
    Config(
        group=2, group_channels=64, dilation_h=2, dilation_w=2, pad_h=2, pad_w=2, offset_scale=2.0
    ),
    Config(group=1, group_channels=96, offset_std=20.0),  # 12 lanes/group: atomics path for fp32
    Config(n=0, group=2, group_channels=8),
]
TOL = {
    torch.float64: dict(rtol=1e-10, atol=1e-10),
    torch.float32: dict(rtol=1e-4, atol=1e-4),
    torch.float16: dict(rtol=1e-2, atol=1e-2),
    torch.bfloat16: dict(rtol=3e-2, atol=3e-2),
}


def _fwd_bwd(fn, cfg, inputs, grad):
    out = fn(*inputs, *cfg.args())
    if out.numel() == 0:
        return (out,)
    return (out, *torch.autograd.grad(out, inputs, grad))


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize('cfg', CONFIGS, ids=[f'cfg{i}' for i in range(len(CONFIGS))])
def test_cuda_matches_cpu_reference(cfg: Config, dtype: torch.dtype) -> None:
    cpu = cfg.inputs(torch.float64)
    if dtype in (torch.float16, torch.bfloat16):
        cpu[1] = torch.round(cpu[1]) + 0.375  # keep 16-bit offsets off the bilinear kinks
        cpu = [t.to(dtype).double() for t in cpu]
    ho, wo = cfg.out_hw
    grad = torch.randn(cfg.n, ho, wo, cfg.group * cfg.group_channels, dtype=torch.float64)
    grad = grad.to(dtype).double()
    expected = _fwd_bwd(dcnv3_reference, cfg, [t.clone().requires_grad_() for t in cpu], grad)
    gpu = [t.to('cuda', dtype).requires_grad_() for t in cpu]
    actual = _fwd_bwd(dcnv3.dcnv3, cfg, gpu, grad.to('cuda', dtype))
    assert actual[0].dtype == dtype and actual[0].is_cuda
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a.cpu().double(), e, **TOL[dtype])


def test_cuda_equals_cpu_kernel() -> None:
    cfg = Config(n=3, h=9, w=11, group=4, group_channels=16)
    inputs = cfg.inputs(torch.float32, requires_grad=True)
    grad = torch.randn(3, 9, 11, 64)
    cpu = _fwd_bwd(dcnv3.dcnv3, cfg, inputs, grad)
    gpu_in = [t.detach().cuda().requires_grad_() for t in inputs]
    gpu = _fwd_bwd(dcnv3.dcnv3, cfg, gpu_in, grad.cuda())
    for a, b in zip(gpu, cpu):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-4, atol=1e-5)


def test_naive_baseline_kernel_agrees() -> None:
    cfg = Config(n=2, group=4, group_channels=16)
    x, off, mask = cfg.inputs(torch.float32, device='cuda')
    torch.testing.assert_close(
        torch.ops.dcnv3._dcnv3_forward_naive(x, off, mask, *cfg.args()),
        dcnv3.dcnv3(x, off, mask, *cfg.args()),
    )


def test_cuda_gradcheck() -> None:
    cfg = Config(n=1, h=4, w=5, group=2, group_channels=4)
    inputs = cfg.inputs(torch.float64, device='cuda', requires_grad=True, seed=3)
    with torch.no_grad():
        inputs[1].copy_(torch.round(inputs[1]) + 0.37)
    assert torch.autograd.gradcheck(
        lambda *t: dcnv3.dcnv3(*t, *cfg.args()), inputs, eps=1e-6, atol=1e-5
    )


def test_cuda_opcheck() -> None:
    cfg = Config(n=2, h=5, w=4, group=2, group_channels=8)
    inputs = cfg.inputs(torch.float32, device='cuda', requires_grad=True)
    torch.library.opcheck(torch.ops.dcnv3.dcnv3_forward.default, (*inputs, *cfg.args()))


def test_misaligned_storage_offset() -> None:
    """A contiguous view that starts at an odd element must not use vectorised loads."""
    cfg = Config(n=1, group=2, group_channels=16)
    x, off, mask = cfg.inputs(torch.float32, device='cuda')
    buf = torch.empty(x.numel() + 1, device='cuda')
    x_odd = buf[1:].view_as(x).copy_(x)
    assert x_odd.is_contiguous() and x_odd.data_ptr() % 16 != 0
    torch.testing.assert_close(
        dcnv3.dcnv3(x_odd, off, mask, *cfg.args()), dcnv3.dcnv3(x, off, mask, *cfg.args())
    )
