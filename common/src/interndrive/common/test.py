"""Test entry point, for one process or under torchrun.

    interndrive test CONFIG CHECKPOINT [--out results.pkl] [--format-only --submission PATH]

    # 8 GPUs: the scene sampler gives every GPU whole scenes, so metrics equal the 1-GPU run
    torchrun --nproc-per-node 8 -m interndrive.test CONFIG CHECKPOINT [options]   (or -m interndrive.common.test)

Prints the task's metric table (the layout of the seed README tables).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from mmengine.config import DictAction

from .engine.checks import run_reporting_user_errors
from .engine.distributed import LAUNCHERS, destroy_distributed


def add_test_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds the arguments of `interndrive test` to `parser`."""
    parser.add_argument(
        'config', help='config file path, or TASK/NAME of a config shipped by a task'
    )
    parser.add_argument('checkpoint', help='checkpoint to test (.pth)')
    parser.add_argument('--work-dir', help='folder for logs (default: work_dirs/<config name>)')
    parser.add_argument(
        '--out', metavar='PKL', help='also pickle all predictions, in dataset order'
    )
    parser.add_argument(
        '--format-only',
        action='store_true',
        help='write the challenge submission file (needs --submission) instead of computing metrics',
    )
    parser.add_argument(
        '--submission', metavar='PATH', help='where --format-only writes the submission'
    )
    parser.add_argument('--metrics-json', metavar='PATH', help='also write the metrics as JSON')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        metavar='KEY=VALUE',
        help='override config entries, e.g. test_dataloader.dataset.data_root=/data/nuscenes',
    )
    parser.add_argument(
        '--launcher',
        choices=LAUNCHERS,
        default='auto',
        help='auto: pytorch when started by torchrun, else none (default: auto)',
    )
    return parser


def test_from_args(args: argparse.Namespace) -> int:
    """Runs testing for parsed `interndrive test` arguments and prints the metric table."""
    from mmengine.dist import is_main_process

    from .engine.workflow import format_metric_table, run_test

    result = run_test(
        args.config,
        args.checkpoint,
        work_dir=args.work_dir,
        out=args.out,
        format_only=args.format_only,
        submission=args.submission,
        metrics_json=args.metrics_json,
        cfg_options=args.cfg_options,
        launcher=args.launcher,
    )
    if is_main_process():
        print(format_metric_table(result.metrics, result.task))
        if result.out is not None:
            print(f'predictions written to {result.out}')
        if result.submission is not None:
            print(f'submission written to {result.submission}')
    return 0


# pytest collects `test_*` functions from modules named test*.py; this module is not a test.
test_from_args.__test__ = False  # type: ignore[attr-defined]


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m interndrive.common.test` / torchrun entry point."""
    parser = add_test_arguments(
        argparse.ArgumentParser(prog='interndrive test', description=__doc__.split('\n')[0])
    )
    args = parser.parse_args(argv)
    try:
        return run_reporting_user_errors(test_from_args, args)
    finally:
        destroy_distributed()  # torchrun warns about a process group left open


if __name__ == '__main__':
    raise SystemExit(main())
