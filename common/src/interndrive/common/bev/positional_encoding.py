"""Learned row/column positional encoding of the BEV grid (mmdet `LearnedPositionalEncoding` layout).

Kept here rather than imported from mmdet so the BEV layers need only mmcv and mmengine; the
parameter names (`row_embed`, `col_embed`) and the output layout match mmdet's, so upstream
checkpoints load unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class BEVLearnedPositionalEncoding(nn.Module):
    """Concatenates a learned column embedding and a learned row embedding for every cell.

    Args:
        num_feats: Channels of each of the two embeddings (output has `2 * num_feats`).
        row_num_embed: Number of rows (bev_h).
        col_num_embed: Number of columns (bev_w).
    """

    def __init__(self, num_feats: int, row_num_embed: int, col_num_embed: int) -> None:
        super().__init__()
        self.num_feats = num_feats
        self.row_num_embed = row_num_embed
        self.col_num_embed = col_num_embed
        self.row_embed = nn.Embedding(row_num_embed, num_feats)
        self.col_embed = nn.Embedding(col_num_embed, num_feats)
        nn.init.uniform_(self.row_embed.weight)
        nn.init.uniform_(self.col_embed.weight)

    def forward(self, batch_size: int, height: int, width: int) -> Tensor:
        """Returns `(batch_size, 2 * num_feats, height, width)`: channels `[col(x), row(y)]`."""
        if height > self.row_num_embed or width > self.col_num_embed:
            raise ValueError(
                f'grid {height}×{width} exceeds the encoding size {self.row_num_embed}×{self.col_num_embed}'
            )
        device = self.row_embed.weight.device
        x_embed = self.col_embed(torch.arange(width, device=device))  # (W, F)
        y_embed = self.row_embed(torch.arange(height, device=device))  # (H, F)
        pos = torch.cat(
            (x_embed[None].expand(height, -1, -1), y_embed[:, None].expand(-1, width, -1)), dim=-1
        )
        return pos.permute(2, 0, 1)[None].expand(batch_size, -1, -1, -1)
