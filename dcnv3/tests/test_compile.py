"""torch.compile / torch.export can trace models using the op (fake kernel + registered autograd)."""

from __future__ import annotations

import pytest
import torch
from dcnv3_test_utils import Config, requires_ops

import dcnv3

pytestmark = requires_ops


def test_export_keeps_the_custom_op() -> None:
    m = dcnv3.DCNv3(channels=16, group=2).eval()
    x = torch.randn(1, 6, 6, 16)
    exported = torch.export.export(m, (x,))
    targets = {str(node.target) for node in exported.graph.nodes if node.op == 'call_function'}
    assert 'dcnv3.dcnv3_forward.default' in targets
    torch.testing.assert_close(exported.module()(x), m(x))


def test_compile_fullgraph_forward_and_backward() -> None:
    cfg = Config(n=2, group=2, group_channels=8)
    inputs = cfg.inputs(torch.float32, requires_grad=True)

    def fn(x, off, mask):
        return dcnv3.dcnv3(x, off, mask, *cfg.args()).square().sum()

    # aot_eager runs the full AOTAutograd tracing (fake kernels, autograd formula) without needing
    # a C++ toolchain for inductor.
    compiled = torch.compile(fn, backend='aot_eager', fullgraph=True)
    eager_grads = torch.autograd.grad(fn(*inputs), inputs)
    compiled_grads = torch.autograd.grad(compiled(*inputs), inputs)
    for a, b in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(a, b)


@pytest.mark.slow
def test_compile_inductor_module() -> None:
    m = dcnv3.DCNv3(channels=16, group=2)
    x = torch.randn(1, 6, 6, 16)
    torch.testing.assert_close(torch.compile(m)(x), m(x), rtol=1e-4, atol=1e-5)
