"""The shared upstream-checkpoint converter machinery (`interndrive.common.task_checkpoint{,_cli}`).

Tiny tensors only; the task packages test their real tables against their models.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from interndrive.common.task_checkpoint import (
    convert_checkpoint_file,
    format_cfg_options,
    missing_parts,
    not_loaded_reason,
    prefix_renames,
    rename_key,
    rename_state_dict,
    require_parts,
    strip_prefixes,
    take_bev_constructor,
    unwrap_state_dict,
)
from interndrive.common.task_checkpoint_cli import add_convert_checkpoint_command


class TaskError(ValueError):
    """Stands in for a task package's own error type."""


class MissingError(FileNotFoundError):
    """Stands in for a task package's missing-file error type."""


REQUIRED = {'backbone.': 'image backbone', 'head.decoder.': 'decoder', 'head.cls.': 'classifier'}
RENAMES = [
    (r'backbone\.(.+)', r'img_backbone.\1'),
    (r'head\.decoder\.layers\.(\d+)\.attn\.(weight|bias)', r'decoder.\1.self_attn.\2'),
    (r'head\.decoder\.layers\.(\d+)\.(.+)', r'decoder.\1.\2'),  # after the more specific rule
    (r'head\.cls\.\d+\.weight', r'cls.weight'),  # one module stored once per layer upstream
]


def _upstream() -> dict[str, torch.Tensor]:
    return {
        'backbone.conv.weight': torch.arange(4.0),
        'head.decoder.layers.0.attn.weight': torch.ones(2),
        'head.decoder.layers.0.norm.bias': torch.zeros(2),
        'head.cls.0.weight': torch.full((3,), 7.0),
        'head.cls.1.weight': torch.full((3,), 7.0),
        'head.loss.code_weights': torch.ones(5),
    }


def _convert(checkpoint, source):
    state = unwrap_state_dict(checkpoint, source, TaskError)
    require_parts(state, REQUIRED, source=source, model='Tiny', error=TaskError)
    return rename_state_dict(state, RENAMES, source=source, error=TaskError)


# ------------------------------------------------------------------------------------ unwrapping
def test_unwrap_strips_stacked_wrappers_and_keeps_only_tensors() -> None:
    weight = torch.ones(1)
    checkpoint = {
        'state_dict': {'module.module.a.w': weight, 'model.b': weight, 'note': 'text'},
        'meta': {'epoch': 24},
    }
    state = unwrap_state_dict(checkpoint, 'x.pth', TaskError, ('module.', 'model.'))
    assert state == {'a.w': weight, 'b': weight}
    assert state['a.w'] is weight  # not copied
    assert unwrap_state_dict({'module.c': weight}, 'bare') == {'c': weight}  # bare state dict
    assert strip_prefixes('model.module.model.x', ('module.', 'model.')) == 'x'
    assert strip_prefixes('backbone.module.x', ('module.',)) == 'backbone.module.x'


@pytest.mark.parametrize('checkpoint', [{'state_dict': {}}, {'state_dict': [1]}, {}])
def test_unwrap_refuses_a_file_without_a_state_dict(checkpoint) -> None:
    with pytest.raises(TaskError, match=r'^empty\.pth: expected a state dict'):
        unwrap_state_dict(checkpoint, 'empty.pth', TaskError)


# ------------------------------------------------------------------------------------ parts
def test_require_parts_names_every_missing_part_in_table_order() -> None:
    state = ['backbone.conv.weight', 'lane_head.x']
    assert missing_parts(state, REQUIRED) == ['decoder (head.decoder.*)', 'classifier (head.cls.*)']
    with pytest.raises(
        TaskError,
        match=r'^b\.pth: not an upstream Tiny checkpoint, no keys for decoder \(head\.decoder\.\*\), '
        r'classifier \(head\.cls\.\*\) \(converted\?\)$',
    ):
        require_parts(
            state, REQUIRED, source='b.pth', model='Tiny', error=TaskError, hint=' (converted?)'
        )
    require_parts(list(_upstream()), REQUIRED, source='ok.pth', model='Tiny', error=TaskError)


# ------------------------------------------------------------------------------------ renaming
def test_rename_key_first_full_match_wins() -> None:
    assert rename_key('head.decoder.layers.3.attn.bias', RENAMES) == 'decoder.3.self_attn.bias'
    assert rename_key('head.decoder.layers.3.ffn.weight', RENAMES) == 'decoder.3.ffn.weight'
    assert rename_key('xbackbone.conv', RENAMES) is None  # full match, not search
    assert rename_key('head.decoder.layers.3', RENAMES) is None


def test_prefix_renames_are_literal_prefixes() -> None:
    table = prefix_renames({'pts_bbox_head.transformer.decoder.': 'occ_head.decoder.', 'a.': ''})
    assert rename_key('pts_bbox_head.transformer.decoder.0.conv.weight', table) == (
        'occ_head.decoder.0.conv.weight'
    )
    assert rename_key('pts_bbox_headXtransformer.decoder.0', table) is None  # '.' is not a wildcard
    assert rename_key('a.b', table) == 'b'


def test_rename_state_dict_merges_equal_copies_and_reports_the_rest_sorted() -> None:
    out, unused = rename_state_dict(_upstream(), RENAMES, source='u.pth', error=TaskError)
    assert out.keys() == {
        'img_backbone.conv.weight',
        'decoder.0.self_attn.weight',
        'decoder.0.norm.bias',
        'cls.weight',
    }
    assert torch.equal(out['cls.weight'], torch.full((3,), 7.0))
    assert unused == ['head.loss.code_weights']


def test_rename_state_dict_refuses_copies_that_differ() -> None:
    state = _upstream()
    state['head.cls.1.weight'] = state['head.cls.1.weight'] + 1
    with pytest.raises(
        TaskError, match=r'^u\.pth: head\.cls\.1\.weight differs .* of cls\.weight$'
    ):
        rename_state_dict(state, RENAMES, source='u.pth', error=TaskError)
    state['head.cls.1.weight'] = torch.zeros(4)  # other shape
    with pytest.raises(TaskError, match=r'per-layer: head\.cls\.1\.weight -> cls\.weight'):
        rename_state_dict(
            state,
            RENAMES,
            source='u.pth',
            error=TaskError,
            conflict='per-layer: {upstream} -> {ours}',
        )
    meta = {k: torch.empty_like(v, device='meta') for k, v in _upstream().items()}
    meta['head.cls.1.weight'] = torch.empty(3, device='meta')  # shapes only: no values to compare
    out, _ = rename_state_dict(meta, RENAMES, source='meta', error=TaskError)
    assert out['cls.weight'].is_meta


def test_rename_state_dict_with_skip_out_and_rewrite() -> None:
    state = _upstream()
    state['head.qkv.weight'] = torch.arange(6.0)

    def rewrite(key: str, value: torch.Tensor, out: dict[str, torch.Tensor]) -> bool:
        if key != 'head.qkv.weight':
            return False
        for name, part in zip('qkv', value.chunk(3), strict=True):
            out[f'attn.{name}_proj.weight'] = part
        return True

    out, unused = rename_state_dict(
        state,
        RENAMES,
        source='u.pth',
        error=TaskError,
        out={'bev.x': torch.zeros(1)},
        skip={'backbone.conv.weight'},
        rewrite=rewrite,
    )
    assert 'bev.x' in out and 'img_backbone.conv.weight' not in out
    assert torch.equal(out['attn.k_proj.weight'], torch.tensor([2.0, 3.0]))
    assert unused == ['head.loss.code_weights']  # skipped and rewritten keys are not "unused"


def test_not_loaded_reason_and_cfg_options() -> None:
    table = {r'head\.loss\..+': 'training loss constant', r'buf': 'buffer'}
    assert not_loaded_reason('head.loss.code_weights', table, 'unknown') == 'training loss constant'
    assert not_loaded_reason('head.lossy', table, 'unknown') == 'unknown'
    assert format_cfg_options({'a.b': True, 'c.0.d': 0}) == 'a.b=True c.0.d=0'


def test_take_bev_constructor_moves_the_upstream_occupancy_split() -> None:
    state = {
        'pts_bbox_head.bev_embedding.weight': torch.ones(2),
        'pts_bbox_head.transformer.encoder.layers.0.w': torch.ones(1),
        'pts_bbox_head.transformer.decoder.0.conv.weight': torch.ones(1),
    }
    bev, taken = take_bev_constructor(state, 'occupancy')
    assert bev.keys() == {
        'bev_constructor.bev_embedding.weight',
        'bev_constructor.encoder.layers.0.w',
    }
    assert taken == {
        'pts_bbox_head.bev_embedding.weight',
        'pts_bbox_head.transformer.encoder.layers.0.w',
    }


# ------------------------------------------------------------------------------------ files
def test_convert_checkpoint_file_writes_state_dict_and_meta(tmp_path: Path) -> None:
    torch.save({'state_dict': _upstream(), 'meta': {}}, tmp_path / 'up.pth')
    result = convert_checkpoint_file(
        tmp_path / 'up.pth',
        tmp_path / 'out' / 'ours.pth',
        _convert,
        source_format='upstream Tiny',
        error=TaskError,
        reason=lambda key: f'why {key}',
        extra_meta={'run_options': {'a': 1}},
    )
    assert result == {'num_tensors': 4, 'unused_keys': ['head.loss.code_weights']}
    written = torch.load(tmp_path / 'out' / 'ours.pth', weights_only=True)
    assert written['meta'] == {
        'source': 'up.pth',
        'source_format': 'upstream Tiny',
        'unused': {'head.loss.code_weights': 'why head.loss.code_weights'},
        'run_options': {'a': 1},
    }
    assert written['state_dict'].keys() == _convert(_upstream(), 'x')[0].keys()
    assert [p.name for p in (tmp_path / 'out').iterdir()] == ['ours.pth']  # no temp file left
    convert_checkpoint_file(tmp_path / 'up.pth', tmp_path / 'list.pth', _convert, source_format='t')
    assert torch.load(tmp_path / 'list.pth')['meta']['unused'] == ['head.loss.code_weights']


def test_convert_checkpoint_file_errors_name_the_file(tmp_path: Path) -> None:
    kwargs = dict(source_format='t', error=TaskError, missing_error=MissingError)
    with pytest.raises(MissingError, match=r"^upstream checkpoint '.*nope\.pth' does not exist$"):
        convert_checkpoint_file(tmp_path / 'nope.pth', tmp_path / 'x.pth', _convert, **kwargs)
    (tmp_path / 'notes.pth').write_text('not a checkpoint')
    with (
        pytest.warns(UserWarning, match='full unpickling'),
        pytest.raises(TaskError, match=r'notes\.pth: not a readable PyTorch checkpoint \('),
    ):
        convert_checkpoint_file(tmp_path / 'notes.pth', tmp_path / 'x.pth', _convert, **kwargs)
    torch.save([torch.ones(1)], tmp_path / 'list.pth')
    with pytest.raises(TaskError, match=r'list\.pth: expected a dict checkpoint, got list'):
        convert_checkpoint_file(tmp_path / 'list.pth', tmp_path / 'x.pth', _convert, **kwargs)
    torch.save({'state_dict': {'backbone.w': torch.ones(1)}}, tmp_path / 'bb.pth')
    with pytest.raises(
        TaskError, match=r'bb\.pth: not an upstream Tiny checkpoint, no keys for dec'
    ):
        convert_checkpoint_file(tmp_path / 'bb.pth', tmp_path / 'x.pth', _convert, **kwargs)
    assert not (tmp_path / 'x.pth').exists()


# ------------------------------------------------------------------------------------ CLI
@pytest.fixture
def converter_module(monkeypatch) -> str:
    module = types.ModuleType('tiny_task_checkpoint')

    def convert_upstream_checkpoint(src: str, dst: str) -> dict:
        return convert_checkpoint_file(src, dst, _convert, source_format='t', error=TaskError)

    module.convert_upstream_checkpoint = convert_upstream_checkpoint
    module.not_loaded_reason = lambda key: 'a loss constant'
    module.upstream_run_options = lambda: 'a.b=True'
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module.__name__


def _run(converter: str, tmp_path: Path, **text: str) -> None:
    parser = argparse.ArgumentParser()
    add_convert_checkpoint_command(
        parser.add_subparsers(dest='command', required=True), converter=converter, help='h', **text
    )
    torch.save({'state_dict': _upstream()}, tmp_path / 'up.pth')
    args = parser.parse_args(
        ['convert-checkpoint', str(tmp_path / 'up.pth'), str(tmp_path / 'ours.pth')]
    )
    assert args.func(args) == 0


def test_cli_prints_summary_unused_keys_and_run_hint(converter_module, tmp_path, capsys) -> None:
    _run(converter_module, tmp_path, run_hint='run:\n  test {dst} --cfg-options {options}')
    dst = tmp_path / 'ours.pth'
    assert capsys.readouterr().out.splitlines() == [
        f'wrote {dst}: 4 tensors',
        'not loaded: head.loss.code_weights (a loss constant)',
        'run:',
        f'  test {dst} --cfg-options a.b=True',
    ]
    assert dst.is_file()


def test_cli_templates_without_reason_or_options(converter_module, tmp_path, capsys) -> None:
    module = sys.modules[converter_module]
    del module.not_loaded_reason, module.upstream_run_options  # not needed by these templates
    _run(
        converter_module,
        tmp_path,
        run_hint='run {dst} with flags',
        unused='not used by Tiny: {key}',
        summary='{dst}: {num_tensors} tensors',
    )
    dst = tmp_path / 'ours.pth'
    assert capsys.readouterr().out.splitlines() == [
        f'{dst}: 4 tensors',
        'not used by Tiny: head.loss.code_weights',
        f'run {dst} with flags',
    ]


def test_cli_module_imports_no_torch() -> None:
    """Task CLIs import the helper at start-up; torch loads only when the command runs."""
    code = "import sys, interndrive.common.task_checkpoint_cli; sys.exit('torch' in sys.modules)"
    subprocess.run([sys.executable, '-c', code], check=True, env={'PYTHONPATH': ':'.join(sys.path)})
