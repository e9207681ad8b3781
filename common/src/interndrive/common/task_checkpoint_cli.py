"""`interndrive <task> convert-checkpoint SRC DST`: one argparse command for every task package.

A task's `add_commands` calls `add_convert_checkpoint_command` with the dotted name of its converter
module and the text it prints. The module is imported only when the command runs (it pulls in torch;
`interndrive --help` stays fast), so this file imports nothing heavy. The converter module provides

* `convert_upstream_checkpoint(src, dst) -> {'num_tensors': int, 'unused_keys': list[str]}`;
* `not_loaded_reason(key) -> str` when the `unused` line uses `{reason}`;
* `upstream_run_options() -> str` (`--cfg-options` arguments) when `run_hint` uses `{options}`.
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType
from typing import Any

__all__ = ['add_convert_checkpoint_command', 'print_conversion_report']


def print_conversion_report(
    converter: ModuleType,
    dst: str,
    result: dict[str, Any],
    *,
    run_hint: str,
    unused: str = 'not loaded: {key} ({reason})',
    summary: str = 'wrote {dst}: {num_tensors} tensors',
) -> None:
    """Prints what a conversion wrote, each upstream key it did not load, and how to run the result.

    Args:
        converter: The task's converter module (for `not_loaded_reason`, `upstream_run_options`).
        dst: The written checkpoint.
        result: `convert_upstream_checkpoint`'s return value.
        run_hint: How to run the converted weights; may use `{dst}` and `{options}`.
        unused: One line per unused upstream key; may use `{key}` and `{reason}`.
        summary: First line; may use `{dst}` and `{num_tensors}`.
    """
    print(summary.format(dst=dst, num_tensors=result['num_tensors']))
    for key in result['unused_keys']:
        reason = converter.not_loaded_reason(key) if '{reason}' in unused else ''
        print(unused.format(key=key, reason=reason))
    options = converter.upstream_run_options() if '{options}' in run_hint else ''
    print(run_hint.format(dst=dst, options=options))


def add_convert_checkpoint_command(
    subparsers: argparse._SubParsersAction,
    *,
    converter: str,
    help: str,
    run_hint: str,
    unused: str = 'not loaded: {key} ({reason})',
    summary: str = 'wrote {dst}: {num_tensors} tensors',
) -> argparse.ArgumentParser:
    """Adds `convert-checkpoint SRC DST` (upstream whole-model `.pth` -> ours) to a task's commands.

    Args:
        subparsers: The task's subcommand group (`Task.add_commands`' argument).
        converter: Dotted name of the task's converter module, e.g. `'interndrive.hdmap.checkpoint'`
            (see the module doc for what it provides); imported when the command runs.
        help: One-line help of the command.
        run_hint: Printed last: how to run the converted weights (`{dst}`, `{options}`).
        unused: Printed per upstream key that was not loaded (`{key}`, `{reason}`).
        summary: Printed first (`{dst}`, `{num_tensors}`).

    Returns:
        The command's parser (to add task-specific options).
    """

    def run(args: argparse.Namespace) -> int:
        module = importlib.import_module(converter)
        result = module.convert_upstream_checkpoint(args.src, args.dst)
        print_conversion_report(
            module, args.dst, result, run_hint=run_hint, unused=unused, summary=summary
        )
        return 0

    parser = subparsers.add_parser('convert-checkpoint', help=help)
    parser.add_argument('src', help='upstream checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint for `interndrive test`')
    parser.set_defaults(func=run)
    return parser
