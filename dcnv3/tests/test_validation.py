"""Every validation rule raises a Python-level error that names the offending argument."""

from __future__ import annotations

import pytest
import torch
from dcnv3_test_utils import Config, requires_ops

import dcnv3
from dcnv3.reference import dcnv3_reference

CFG = Config(n=1, h=5, w=5, group=2, group_channels=4)
ENTRY_POINTS = [dcnv3.dcnv3, dcnv3_reference]


def _call(fn, inputs, **overrides):
    args = dict(
        zip(
            [
                'kernel_h',
                'kernel_w',
                'stride_h',
                'stride_w',
                'pad_h',
                'pad_w',
                'dilation_h',
                'dilation_w',
                'group',
                'group_channels',
                'offset_scale',
                'remove_center',
            ],
            CFG.args(),
        )
    )
    args.update(overrides)
    return fn(*inputs, **args)


@pytest.fixture
def inputs() -> list[torch.Tensor]:
    return CFG.inputs(torch.float32)


@pytest.mark.parametrize('fn', ENTRY_POINTS)
@pytest.mark.parametrize('which', [0, 1, 2])
def test_wrong_rank(fn, inputs, which: int) -> None:
    name = ['input', 'offset', 'mask'][which]
    inputs[which] = inputs[which][0]
    with pytest.raises(ValueError, match=f'{name} must be 4-D'):
        _call(fn, inputs)


@pytest.mark.parametrize('fn', ENTRY_POINTS)
def test_not_a_tensor(fn, inputs) -> None:
    inputs[2] = inputs[2].tolist()
    with pytest.raises(TypeError, match=r'mask must be a torch\.Tensor'):
        _call(fn, inputs)


@pytest.mark.parametrize('fn', ENTRY_POINTS)
def test_integer_tensor(fn, inputs) -> None:
    inputs[0] = inputs[0].long()
    with pytest.raises(ValueError, match='input must be a floating-point tensor'):
        _call(fn, inputs)


@pytest.mark.parametrize('fn', ENTRY_POINTS)
def test_channels_not_group_times_group_channels(fn, inputs) -> None:
    with pytest.raises(ValueError, match=r'input has 8 channels but group \* group_channels'):
        _call(fn, inputs, group_channels=3)


@pytest.mark.parametrize('fn', ENTRY_POINTS)
def test_offset_shape(fn, inputs) -> None:
    inputs[1] = inputs[1][..., :-2]
    with pytest.raises(
        ValueError, match=r'offset must have shape \(N, H_out, W_out, group\*points\*2\)'
    ):
        _call(fn, inputs)


@pytest.mark.parametrize('fn', ENTRY_POINTS)
def test_mask_shape(fn, inputs) -> None:
    inputs[2] = inputs[2][:, :-1]
    with pytest.raises(ValueError, match=r'mask must have shape'):
        _call(fn, inputs)


@pytest.mark.parametrize('fn', ENTRY_POINTS)
def test_offset_shape_with_remove_center(fn, inputs) -> None:
    # 9 points given, remove_center expects 8.
    with pytest.raises(ValueError, match='offset must have shape'):
        _call(fn, inputs, remove_center=True)


@pytest.mark.parametrize('fn', ENTRY_POINTS)
def test_mixed_dtypes(fn, inputs) -> None:
    inputs[1] = inputs[1].double()
    with pytest.raises(
        ValueError, match=r'offset has dtype torch\.float64 but input has torch\.float32'
    ):
        _call(fn, inputs)


@pytest.mark.parametrize('fn', ENTRY_POINTS)
def test_mixed_devices(fn, inputs) -> None:
    inputs[2] = inputs[2].to('meta')
    with pytest.raises(ValueError, match=r'mask is on meta but input is on cpu'):
        _call(fn, inputs)


@pytest.mark.parametrize('fn', ENTRY_POINTS)
@pytest.mark.parametrize(
    'name',
    [
        'kernel_h',
        'kernel_w',
        'stride_h',
        'stride_w',
        'dilation_h',
        'dilation_w',
        'group',
        'group_channels',
    ],
)
@pytest.mark.parametrize('value', [0, -1])
def test_non_positive_sizes(fn, inputs, name: str, value: int) -> None:
    with pytest.raises(ValueError, match=f'{name} must be positive, got {value}'):
        _call(fn, inputs, **{name: value})


@pytest.mark.parametrize('fn', ENTRY_POINTS)
def test_negative_pad(fn, inputs) -> None:
    with pytest.raises(ValueError, match='pad_w must be >= 0, got -1'):
        _call(fn, inputs, pad_w=-1)


@pytest.mark.parametrize('fn', ENTRY_POINTS)
def test_non_integer_size(fn, inputs) -> None:
    with pytest.raises(TypeError, match='stride_h must be an int, got float'):
        _call(fn, inputs, stride_h=1.0)


@pytest.mark.parametrize('fn', ENTRY_POINTS)
def test_input_too_small(fn) -> None:
    cfg = Config(n=1, h=2, w=2, kernel_h=5, kernel_w=5, pad_h=0, pad_w=0)
    x = torch.rand(1, 2, 2, 8)
    off = torch.rand(1, 1, 1, 2 * 25 * 2)
    mask = torch.rand(1, 1, 1, 2 * 25)
    with pytest.raises(ValueError, match='too small for kernel 5x5'):
        fn(x, off, mask, *cfg.args())


@pytest.mark.parametrize('fn', ENTRY_POINTS)
def test_remove_center_with_1x1_kernel(fn) -> None:
    cfg = Config(n=1, kernel_h=1, kernel_w=1, pad_h=0, pad_w=0)
    x = torch.rand(1, 7, 6, 8)
    with pytest.raises(ValueError, match='remove_center needs more than one kernel point'):
        fn(x, torch.rand(1, 7, 6, 0), torch.rand(1, 7, 6, 0), *cfg.with_(remove_center=True).args())


@requires_ops
def test_cpp_checks_are_errors_not_crashes(inputs) -> None:
    """Calling the raw op with bad shapes raises RuntimeError (TORCH_CHECK) instead of crashing."""
    with pytest.raises(RuntimeError, match='offset must have shape'):
        torch.ops.dcnv3.dcnv3_forward(inputs[0], inputs[1][..., :-2], inputs[2], *CFG.args())
    with pytest.raises(RuntimeError, match='channels but group'):
        torch.ops.dcnv3.dcnv3_forward(*inputs, *CFG.with_(group_channels=3).args())
    with pytest.raises(RuntimeError, match='grad_output must have the output'):
        torch.ops.dcnv3.dcnv3_backward(inputs[0][:, :1], *inputs, *CFG.args())


def test_module_errors() -> None:
    with pytest.raises(ValueError, match='channels must be divisible by group'):
        dcnv3.DCNv3(channels=30, group=4)
    with pytest.raises(
        ValueError, match='remove_center is only compatible with an odd kernel_size'
    ):
        dcnv3.DCNv3_pytorch(channels=16, group=2, kernel_size=4, remove_center=True)
    with pytest.raises(ValueError, match="norm_layer must be 'LN' or 'BN'"):
        dcnv3.DCNv3_pytorch(channels=16, group=2, norm_layer='GN')
    with pytest.raises(ValueError, match='act_layer must be one of'):
        dcnv3.DCNv3_pytorch(channels=16, group=2, act_layer='Tanh')
    m = dcnv3.DCNv3_pytorch(channels=16, group=2)
    with pytest.raises(ValueError, match=r'DCNv3 expects input of shape \(N, H, W, 16\)'):
        m(torch.rand(1, 16, 4, 4))


def test_upstream_function_im2col_step_checked(inputs) -> None:
    with pytest.raises(ValueError, match='im2col_step must be a positive int'):
        dcnv3.functions.DCNv3Function.apply(*inputs, *CFG.args()[:-1], 0, False)
