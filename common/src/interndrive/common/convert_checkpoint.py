"""Convert InternImage checkpoints between upstream formats and ours.

    python -m interndrive.common.convert_checkpoint SRC DST --to {interndrive,classification,mmdet,huggingface}
        [--prefix PREFIX] [--ema] [--arch internimage_s] [--strict]

SRC may be any format :mod:`interndrive.common.checkpoint` reads (including a whole task/detector
checkpoint, from which the backbone is extracted). ``--arch`` checks the weights against a variant
built on the meta device (no memory) and reports missing/unexpected keys; ``--strict`` makes any
mismatch an error. Also called by ``interndrive convert-checkpoint``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

import torch

from .checkpoint import (
    FORMATS,
    HEAD_PREFIXES,
    CheckpointMismatchError,
    LoadReport,
    atomic_torch_save,
    extract_backbone_state_dict,
    read_checkpoint,
    to_format,
)

__all__ = ['check_against_arch', 'convert_checkpoint', 'main']


def check_against_arch(
    state_dict: dict[str, torch.Tensor], arch: str, source: str = '<dict>'
) -> LoadReport:
    """Compare backbone weights with variant ``arch`` (built on the meta device, head inferred).

    Args:
        state_dict: weights under our key names.
        arch: variant name, e.g. ``'internimage_s'``.
        source: name for the report.
    """
    from .backbones import create_internimage

    head = state_dict.get('head.weight')
    num_classes = int(head.shape[0]) if head is not None else 0
    with torch.device('meta'):
        model = create_internimage(arch, num_classes=num_classes, core_op='DCNv3_pytorch')
    own = model.state_dict()
    report = LoadReport(source=source, source_format='check', prefix='')
    for k, v in state_dict.items():
        if k not in own:
            (
                report.ignored_head
                if num_classes == 0 and k.startswith(HEAD_PREFIXES)
                else report.unexpected
            ).append(k)
        elif tuple(v.shape) != tuple(own[k].shape):
            report.mismatched.append((k, tuple(v.shape), tuple(own[k].shape)))
        else:
            report.loaded.append(k)
    report.missing = [k for k in own if k not in state_dict]
    return report


def convert_checkpoint(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    target_format: str,
    prefix: str | None = None,
    use_ema: bool = False,
    arch: str | None = None,
    strict: bool = False,
    weights_only: bool | None = None,
) -> dict[str, Any]:
    """Read ``src`` in any supported format and write its InternImage weights to ``dst`` as ``target_format``.

    Args:
        src: checkpoint path, HF directory or URL.
        dst: output file (written atomically; ``.safetensors`` only for ``huggingface``).
        target_format: one of ``interndrive``, ``classification``, ``mmdet``, ``huggingface``.
        prefix: backbone key prefix in ``src`` (default: found automatically).
        use_ema: take the EMA weights of a classification checkpoint.
        arch: check the weights against this variant (e.g. ``'internimage_s'``).
        strict: with ``arch``, fail on any missing/unexpected/mismatched key.
        weights_only: see :func:`interndrive.common.checkpoint.read_checkpoint`.

    Returns:
        ``{'source_format', 'target_format', 'prefix', 'num_tensors', 'num_params', 'check'}``
        (``check`` is the :class:`LoadReport` of ``arch`` or None).
    """
    if target_format not in FORMATS:
        raise ValueError(f'target_format must be one of {FORMATS}, got {target_format!r}')
    if str(dst).endswith('.safetensors') and target_format != 'huggingface':
        raise ValueError(f'{dst}: .safetensors output is only supported for --to huggingface')
    ckpt = read_checkpoint(src, weights_only=weights_only)
    sd, fmt, found_prefix = extract_backbone_state_dict(
        ckpt, prefix=prefix, use_ema=use_ema, source=str(src)
    )
    check = None
    if arch is not None:
        check = check_against_arch(sd, arch, source=str(src))
        if strict and not check.complete:
            raise CheckpointMismatchError(f'{src} does not match {arch}: {check.summary(limit=50)}')
    meta = {'source': os.path.basename(str(src)), 'source_format': fmt, 'arch': arch}
    atomic_torch_save(to_format(sd, target_format, meta=meta), dst)
    return {
        'source_format': fmt,
        'target_format': target_format,
        'prefix': found_prefix,
        'num_tensors': len(sd),
        'num_params': sum(
            v.numel()
            for k, v in sd.items()
            if not k.endswith(('running_mean', 'running_var', 'num_batches_tracked'))
        ),
        'check': check,
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='python -m interndrive.common.convert_checkpoint',
        description='Convert InternImage checkpoints between upstream formats (classification, mmdet, '
        'HuggingFace, whole task checkpoints) and the interndrive format.',
    )
    p.add_argument('src', help='input checkpoint: file, HuggingFace model directory or http(s) URL')
    p.add_argument('dst', help='output file (written atomically)')
    p.add_argument(
        '--to', dest='target_format', required=True, choices=FORMATS, help='output format'
    )
    p.add_argument(
        '--prefix',
        default=None,
        help="backbone key prefix in SRC, e.g. 'img_backbone.' (default: auto)",
    )
    p.add_argument(
        '--ema', action='store_true', help="use 'model_ema' of a classification checkpoint"
    )
    p.add_argument(
        '--arch', default=None, help='check the weights against this variant, e.g. internimage_s'
    )
    p.add_argument('--strict', action='store_true', help='with --arch: fail on any key mismatch')
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the process exit code (0 ok, 1 mismatch, 2 bad input)."""
    args = _parser().parse_args(argv)
    try:
        info = convert_checkpoint(
            args.src, args.dst, args.target_format, prefix=args.prefix, use_ema=args.ema,
            arch=args.arch, strict=args.strict,
        )  # fmt: skip
    except CheckpointMismatchError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    except (OSError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(
        f'{args.src} [{info["source_format"]}, prefix {info["prefix"]!r}] -> {args.dst} [{info["target_format"]}]: '
        f'{info["num_tensors"]} tensors, {info["num_params"] / 1e6:.2f}M parameters'
    )
    if info['check'] is not None:
        print(info['check'].summary())
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
