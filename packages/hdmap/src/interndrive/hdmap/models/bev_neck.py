"""BEV neck of VectorMapNet: ResNet-18 stem + layer1 on the BEV map (100 × 200 → 25 × 50).

Upstream takes `torchvision.models.resnet18().layer1`; torchvision cannot be installed beside the CPU
torch wheel, so the two BasicBlocks are written here with the same structure and parameter shapes.
"""

from __future__ import annotations

from mmdet3d.registry import MODELS
from torch import Tensor, nn


class BasicBlock(nn.Module):
    """ResNet BasicBlock without downsampling (what resnet18.layer1 holds twice)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + x)


@MODELS.register_module()
class BEVResNetNeck(nn.Module):
    """Conv7×7/2 → BN → ReLU → MaxPool3/2 → 2 BasicBlocks → Conv1×1 (no bias).

    Args:
        in_channels: BEV channels in.
        mid_channels: ResNet-18 layer1 width (64).
        out_channels: Channels out.
        num_blocks: BasicBlocks (resnet18.layer1 has 2).
    """

    def __init__(
        self,
        in_channels: int = 128,
        mid_channels: int = 64,
        out_channels: int = 128,
        num_blocks: int = 2,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        self.layer1 = nn.Sequential(*[BasicBlock(mid_channels) for _ in range(num_blocks)])
        self.proj = nn.Conv2d(mid_channels, out_channels, 1, bias=False)  # no bias, as upstream

    def forward(self, bev: Tensor) -> Tensor:
        return self.proj(self.layer1(self.stem(bev)))
