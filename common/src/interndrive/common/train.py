"""Training entry point, for one process or under torchrun.

    interndrive train CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]

    # 8 GPUs on one machine
    torchrun --nproc-per-node 8 -m interndrive.train CONFIG [options]   (or -m interndrive.common.train)

    # 2 machines x 8 GPUs: run on each machine with its own --node-rank
    torchrun --nnodes 2 --node-rank 0 --nproc-per-node 8 \\
        --master-addr 10.0.0.1 --master-port 29500 -m interndrive.common.train CONFIG [options]

CONFIG is a config file path or `TASK/NAME` (a config shipped in the task package).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from mmengine.config import DictAction

from .engine.checks import run_reporting_user_errors
from .engine.distributed import LAUNCHERS, destroy_distributed


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds the arguments of `interndrive train` to `parser`."""
    parser.add_argument(
        'config', help='config file path, or TASK/NAME of a config shipped by a task'
    )
    parser.add_argument('--work-dir', help='output folder (default: work_dirs/<config name>)')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        metavar='CKPT',
        help='resume from CKPT, or from the newest checkpoint in the work dir when CKPT is omitted',
    )
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision: float16 with loss scaling on CUDA, bfloat16 autocast on CPU',
    )
    parser.add_argument(
        '--tensorboard',
        action='store_true',
        help='also log to TensorBoard (<work-dir>/<time>/vis_data)',
    )
    parser.add_argument('--seed', type=int, help='random seed (overrides randomness.seed)')
    parser.add_argument(
        '--deterministic',
        action='store_true',
        help='deterministic cuDNN/torch algorithms (slower; randomness.deterministic=True)',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        metavar='KEY=VALUE',
        help='override config entries, e.g. train_dataloader.batch_size=2 optim_wrapper.optimizer.lr=1e-4',
    )
    parser.add_argument(
        '--launcher',
        choices=LAUNCHERS,
        default='auto',
        help='auto: pytorch when started by torchrun, else none (default: auto)',
    )
    return parser


def train_from_args(args: argparse.Namespace) -> int:
    """Runs training for parsed `interndrive train` arguments."""
    from .engine.workflow import run_train

    cfg_options = dict(args.cfg_options or {})
    if args.tensorboard:
        cfg_options['tensorboard'] = True
    if args.deterministic:
        cfg_options['randomness.deterministic'] = True
    work_dir = run_train(
        args.config,
        work_dir=args.work_dir,
        resume=args.resume,
        amp=args.amp,
        cfg_options=cfg_options,
        launcher=args.launcher,
        seed=args.seed,
    )
    from mmengine.dist import is_main_process

    from .engine.resume import find_last_checkpoint

    if is_main_process():
        print(
            f'training finished; work dir: {work_dir}; last checkpoint: {find_last_checkpoint(work_dir)}'
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m interndrive.common.train` / torchrun entry point."""
    parser = add_train_arguments(
        argparse.ArgumentParser(prog='interndrive train', description=__doc__.split('\n')[0])
    )
    args = parser.parse_args(argv)
    try:
        return run_reporting_user_errors(train_from_args, args)
    finally:
        destroy_distributed()  # torchrun warns about a process group left open


if __name__ == '__main__':
    raise SystemExit(main())
