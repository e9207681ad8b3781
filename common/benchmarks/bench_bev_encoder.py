"""BEV encoder layers: vectorised per-camera query rebatching vs upstream's Python loops, and the
whole BEV constructor in float32 vs bfloat16 autocast.

    python common/benchmarks/bench_bev_encoder.py [--bev 50x100] [--cams 7] [--batch 2]
                                                  [--layers 1] [--iters 5] [--device cpu|cuda]

Defaults are an OpenLane-V2-shaped model (7 cameras, 4 anchors, 256 channels, 4 FPN levels) at a
quarter of its BEV grid and a 256×192 image so that a laptop CPU finishes in about a minute
(`--bev 100x200 --image 1568x2048` is the real size). Every number
in the table is measured in this run; ratios are against the first row of each group.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from mmengine.registry import MODELS

import interndrive.common.bev  # noqa: F401  (registers the modules)
from interndrive.common.bev import SpatialCrossAttention


def constructor_cfg(bev_h: int, bev_w: int, cams: int, layers: int) -> dict:
    layer = dict(
        type='BEVFormerLayer',
        attn_cfgs=[
            dict(type='TemporalSelfAttention', embed_dims=256, num_levels=1),
            dict(
                type='SpatialCrossAttention',
                embed_dims=256,
                num_cams=cams,
                deformable_attention=dict(
                    type='MSDeformableAttention3D', embed_dims=256, num_points=8, num_levels=4
                ),
            ),
        ],
        ffn_cfgs=dict(type='FFN', embed_dims=256, feedforward_channels=512, ffn_drop=0.1),
    )
    return dict(
        type='BEVFormerConstructer',
        bev_h=bev_h,
        bev_w=bev_w,
        pc_range=[-51.2, -25.6, -2.3, 51.2, 25.6, 1.7],
        num_cams=cams,
        use_prev_bev=False,
        encoder=dict(
            type='BEVFormerEncoder',
            num_layers=layers,
            num_points_in_pillar=4,
            image_size_key='img_shape',
            transformerlayers=layer,
        ),
    )


def rig(cams: int, batch: int, height: int, width: int) -> list[dict]:
    """`cams` pinhole cameras (90° field of view) evenly spread around the ego, 1.5 m up."""
    metas = []
    for _ in range(batch):
        mats = []
        for k in range(cams):
            yaw = 2 * math.pi * k / cams
            c, s = math.cos(yaw), math.sin(yaw)
            rot = np.array([[s, -c, 0.0], [0.0, 0.0, -1.0], [c, s, 0.0]])
            ego2cam = np.eye(4)
            ego2cam[:3, :3] = rot
            ego2cam[:3, 3] = -rot @ np.array([0.0, 0.0, 1.5])
            intr = np.eye(4)
            intr[0, 0] = intr[1, 1] = width / 2
            intr[0, 2], intr[1, 2] = width / 2, height / 2
            mats.append(intr @ ego2cam)
        metas.append(
            dict(lidar2img=np.stack(mats), img_shape=(height, width, 3), can_bus=np.zeros(18))
        )
    return metas


def upstream_loop_sca(sca: SpatialCrossAttention, query, value, refs, mask, shapes, starts):
    """Upstream's algorithm: index lists per camera, Python loops over samples and cameras to
    gather into and scatter out of the padded tensor (per-sample masks, as in our fix)."""
    bs, _, channels = query.shape
    num_cams = value.shape[1]
    anchors = refs.shape[3]
    indexes = [
        [mask[n, b].any(-1).nonzero().squeeze(-1) for n in range(num_cams)] for b in range(bs)
    ]
    max_len = max(1, max(len(i) for row in indexes for i in row))
    queries = query.new_zeros(bs, num_cams, max_len, channels)
    refs_rebatch = refs.new_zeros(bs, num_cams, max_len, anchors, 2)
    for b in range(bs):
        for n in range(num_cams):
            idx = indexes[b][n]
            queries[b, n, : len(idx)] = query[b, idx]
            refs_rebatch[b, n, : len(idx)] = refs[n, b, idx]
    out = sca.deformable_attention(
        query=queries.view(bs * num_cams, max_len, channels),
        value=value.reshape(bs * num_cams, -1, channels),
        reference_points=refs_rebatch.view(bs * num_cams, max_len, anchors, 2),
        spatial_shapes=shapes,
        level_start_index=starts,
    ).view(bs, num_cams, max_len, channels)
    slots = torch.zeros_like(query)
    for b in range(bs):
        for n in range(num_cams):
            idx = indexes[b][n]
            slots[b, idx] += out[b, n, : len(idx)]
    count = mask.any(-1).permute(1, 2, 0).sum(-1).clamp(min=1)
    return sca.output_proj(slots / count[..., None]) + query


def round_robin_medians(
    fns: dict[str, Callable[[], object]], warmup: int, iters: int, device: torch.device
) -> dict[str, float]:
    """Median seconds per call; the cases take turns so that load from other processes on a shared
    machine spreads over all of them instead of biasing whichever ran during a busy spell."""
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    times: dict[str, list[float]] = {name: [] for name in fns}
    with torch.inference_mode():
        for i in range(warmup + iters):
            for name, fn in fns.items():
                sync()
                t0 = time.perf_counter()
                fn()
                sync()
                if i >= warmup:
                    times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--bev', default='25x50', help='BEV grid HxW (OpenLane-V2: 100x200)')
    parser.add_argument('--cams', type=int, default=7)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--layers', type=int, default=1)
    parser.add_argument('--image', default='192x256', help='image HxW; FPN levels at strides 8..64')
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    bev_h, bev_w = (int(v) for v in args.bev.lower().split('x'))
    img_h, img_w = (int(v) for v in args.image.lower().split('x'))
    device = torch.device(args.device)
    torch.manual_seed(0)

    model = MODELS.build(constructor_cfg(bev_h, bev_w, args.cams, args.layers)).to(device).eval()
    metas = rig(args.cams, args.batch, img_h, img_w)
    feats = [
        torch.randn(
            args.batch, args.cams, 256, math.ceil(img_h / s), math.ceil(img_w / s), device=device
        )
        for s in (8, 16, 32, 64)
    ]
    value, shapes, starts = model.flatten_features(feats)
    refs, mask = model.encoder.camera_projection(metas, bev_h, bev_w, args.cams, device)
    query = torch.randn(args.batch, bev_h * bev_w, 256, device=device)
    sca = model.encoder.layers[0].attentions[1]
    hits = mask.any(-1).float().sum(-1).mean().item()

    with torch.inference_mode():
        torch.testing.assert_close(
            sca(query, value, refs, mask, shapes, starts),
            upstream_loop_sca(sca, query, value, refs, mask, shapes, starts),
            rtol=1e-4,
            atol=1e-4,
        )

    def bf16() -> object:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return model(feats, metas)

    t = round_robin_medians(
        {
            'loop': lambda: upstream_loop_sca(sca, query, value, refs, mask, shapes, starts),
            'vec': lambda: sca(query, value, refs, mask, shapes, starts),
            'fp32': lambda: model(feats, metas),
            'bf16': bf16,
        },
        args.warmup,
        args.iters,
        device,
    )
    rows = [
        ('SCA, upstream Python-loop rebatch', t['loop'], 1.0),
        ('SCA, vectorised rebatch (ours)', t['vec'], t['loop'] / t['vec']),
        (f'constructor ({args.layers} layer) fp32', t['fp32'], 1.0),
        (f'constructor ({args.layers} layer) bf16 autocast', t['bf16'], t['fp32'] / t['bf16']),
    ]

    params = sum(p.numel() for p in model.parameters())
    print(
        f'device={device} threads={torch.get_num_threads()} batch={args.batch} bev={bev_h}x{bev_w} '
        f'cams={args.cams} image={img_h}x{img_w} params={params / 1e6:.2f}M '
        f'mean hits/camera={hits:.0f} of {bev_h * bev_w}'
    )
    print(f'| {"case":<42} | {"ms":>9} | {"speed-up":>8} |')
    print(f'|{"-" * 44}|{"-" * 11}|{"-" * 10}|')
    for name, seconds, ratio in rows:
        print(f'| {name:<42} | {seconds * 1e3:9.1f} | {ratio:7.2f}x |')


if __name__ == '__main__':
    main()
