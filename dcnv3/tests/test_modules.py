"""The DCNv3 block: upstream parameter names, wiring, compiled vs reference core, fallback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from dcnv3_test_utils import requires_ops

from dcnv3 import DCNv3, DCNv3_pytorch

# REFERENCE.md Part 1 §1.4: the keys of `levels.{i}.blocks.{j}.dcn.*` in released checkpoints.
UPSTREAM_KEYS = {
    'dw_conv.0.weight',
    'dw_conv.0.bias',
    'dw_conv.1.1.weight',
    'dw_conv.1.1.bias',
    'offset.weight',
    'offset.bias',
    'mask.weight',
    'mask.bias',
    'input_proj.weight',
    'input_proj.bias',
    'output_proj.weight',
    'output_proj.bias',
}


def test_parameter_names_match_upstream() -> None:
    m = DCNv3_pytorch(channels=80, group=5)
    assert set(m.state_dict()) == UPSTREAM_KEYS
    assert m.dw_conv[0].weight.shape == (80, 1, 3, 3)
    assert m.offset.weight.shape == (5 * 9 * 2, 80) and m.mask.weight.shape == (5 * 9, 80)
    cfs = DCNv3_pytorch(channels=64, group=4, center_feature_scale=True, dw_kernel_size=5)
    assert set(cfs.state_dict()) == UPSTREAM_KEYS | {
        'center_feature_scale_proj_weight',
        'center_feature_scale_proj_bias',
    }
    assert cfs.center_feature_scale_proj_weight.shape == (4, 64)
    assert cfs.dw_conv[0].weight.shape == (64, 1, 5, 5)
    bn = DCNv3_pytorch(channels=16, group=2, norm_layer='BN')
    assert 'dw_conv.1.0.running_mean' in bn.state_dict()
    rc = DCNv3_pytorch(channels=16, group=2, remove_center=True)
    assert rc.offset.weight.shape == (2 * 8 * 2, 16)


def test_upstream_checkpoint_loads_strictly() -> None:
    """A state dict with upstream key names and shapes loads with strict=True into both classes."""
    src = DCNv3_pytorch(channels=32, group=2)
    state = {k: torch.randn_like(v) for k, v in src.state_dict().items()}
    for cls in (DCNv3, DCNv3_pytorch):
        m = cls(channels=32, group=2)
        m.load_state_dict(state, strict=True)
        assert torch.equal(m.offset.weight, state['offset.weight'])


def test_initial_block_is_projected_box_filter() -> None:
    """At init offsets are 0 and the mask uniform, so the core op is a 3x3 mean with zero padding."""
    torch.manual_seed(0)
    m = DCNv3_pytorch(channels=16, group=2).double()
    x = torch.randn(2, 6, 5, 16, dtype=torch.float64)
    v = m.input_proj(x).permute(0, 3, 1, 2)
    box = F.avg_pool2d(v, 3, stride=1, padding=1, count_include_pad=True).permute(0, 2, 3, 1)
    torch.testing.assert_close(m(x), m.output_proj(box))


def _trained_like(cls, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    m = cls(**kwargs).double()
    with torch.no_grad():  # non-trivial offsets/mask, as in a trained checkpoint
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return m


@requires_ops
@pytest.mark.parametrize(
    'kwargs',
    [
        dict(channels=32, group=2),
        dict(channels=48, group=3, center_feature_scale=True, dw_kernel_size=5, offset_scale=2.0),
        dict(channels=32, group=4, remove_center=True, norm_layer='BN', act_layer='ReLU'),
    ],
    ids=['plain', 'center-feature-scale', 'remove-center-bn'],
)
def test_compiled_block_matches_reference_block(kwargs) -> None:
    ref = _trained_like(DCNv3_pytorch, **kwargs)
    fast = DCNv3(**kwargs).double()
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(2, 6, 7, kwargs['channels'], dtype=torch.float64, requires_grad=True)
    y_ref, y_fast = ref(x), fast(x)
    torch.testing.assert_close(y_fast, y_ref)
    g_ref = torch.autograd.grad(y_ref.square().sum(), [x, *ref.parameters()])
    g_fast = torch.autograd.grad(y_fast.square().sum(), [x, *fast.parameters()])
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b)


def test_upstream_import_paths() -> None:
    from dcnv3 import modules as opsm
    from dcnv3.functions import DCNv3Function, dcnv3_core_pytorch
    from dcnv3.modules import DCNv3 as M1
    from dcnv3.modules import DCNv3_pytorch as M2

    # upstream intern_image.py looks the class up by name: getattr(opsm, core_op)
    assert getattr(opsm, 'DCNv3') is M1 and getattr(opsm, 'DCNv3_pytorch') is M2  # noqa: B009
    x = torch.rand(1, 4, 4, 8, dtype=torch.float64)
    off = torch.randn(1, 4, 4, 2 * 9 * 2, dtype=torch.float64)
    mask = torch.rand(1, 4, 4, 2 * 9, dtype=torch.float64)
    args = (3, 3, 1, 1, 1, 1, 1, 1, 2, 4, 1.0)
    # upstream call shapes: Function.apply(..., im2col_step, remove_center); core(..., remove_center)
    torch.testing.assert_close(
        DCNv3Function.apply(x, off, mask, *args, 256, 0), dcnv3_core_pytorch(x, off, mask, *args, 0)
    )


def test_fallback_without_extension_warns_once() -> None:
    """With the extension unavailable, DCNv3 runs on the reference and warns exactly once."""
    script = (
        'import warnings, torch, dcnv3\n'
        'assert not dcnv3.has_compiled_ops() and not dcnv3.has_cuda_kernel()\n'
        'm = dcnv3.DCNv3(channels=16, group=2)\n'
        'with warnings.catch_warnings(record=True) as w:\n'
        '    warnings.simplefilter("always")\n'
        '    for _ in range(3):\n'
        '        y = m(torch.rand(1, 5, 5, 16))\n'
        'msgs = [str(x.message) for x in w if "reference" in str(x.message)]\n'
        'assert len(msgs) == 1, msgs\n'
        'assert "DCNV3_DISABLE_EXTENSION" in msgs[0], msgs\n'
        'print(tuple(y.shape))\n'
    )
    env = dict(os.environ, DCNV3_DISABLE_EXTENSION='1', PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run(
        [sys.executable, '-c', script], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '(1, 5, 5, 16)'


@requires_ops
def test_activation_checkpointing() -> None:
    """OCC wraps blocks in torch.utils.checkpoint (with_cp=True): recomputation must work."""
    m = _trained_like(DCNv3, channels=16, group=2)
    x = torch.randn(1, 5, 6, 16, dtype=torch.float64, requires_grad=True)
    plain = torch.autograd.grad(m(x).sum(), x)[0]
    checkpointed = torch.utils.checkpoint.checkpoint(m, x, use_reentrant=False)
    torch.testing.assert_close(torch.autograd.grad(checkpointed.sum(), x)[0], plain)
