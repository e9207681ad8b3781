"""PolylineGenerator: autoregressive vertex model of VectorMapNet (PolyGen-style, stage 2).

Every line is generated from 5 condition tokens (its class, then the 4 quantised bbox corner values) and
the BEV of its sample (cross-attention memory). Vertices are discrete: token 0 = stop, token v + 1 = canvas
cell v; a polyline is x0, y0, x1, y1, ..., stop. y positions can never emit stop.

Training uses teacher forcing with a causal mask (condition tokens see each other fully). Inference keeps a
per-layer key/value cache and feeds only the newest token (`generate`); `generate_naive` re-runs the
full prefix each step and exists as the reference the cache is tested against. Decoding is nucleus
sampling (top-p 0.9, upstream's default) or greedy (`greedy=True`, reproducible evaluation).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from .map_element_detector import coord_grid

STOP_TOKEN = 0
NEG_INF = -1e9


class CachedAttention(nn.Module):
    """Multi-head attention whose keys/values can be cached across decoding steps."""

    def __init__(self, d_model: int, nhead: int, dropout: float) -> None:
        super().__init__()
        if d_model % nhead:
            raise ValueError(
                f'CachedAttention: d_model {d_model} is not divisible by nhead {nhead}'
            )
        self.nhead, self.dropout = nhead, dropout
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def _heads(self, x: Tensor) -> Tensor:
        return x.unflatten(-1, (self.nhead, -1)).transpose(1, 2)  # (L, h, T, d/h)

    def keys_values(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._heads(self.k_proj(x)), self._heads(self.v_proj(x))

    def forward(self, x: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        q = self._heads(self.q_proj(x))
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        return self.out_proj(out.transpose(1, 2).flatten(2))


class CausalDecoderLayer(nn.Module):
    """Pre-LN decoder layer with ReZero residual gates (initialised to 0 when `re_zero`)."""

    def __init__(
        self, d_model: int, nhead: int, dim_feedforward: int, dropout: float, re_zero: bool
    ) -> None:
        super().__init__()
        self.self_attn = CachedAttention(d_model, nhead, dropout)
        self.cross_attn = CachedAttention(d_model, nhead, dropout)
        self.ffn = nn.Sequential(nn.Linear(d_model, dim_feedforward), nn.ReLU(inplace=True),
                                 nn.Dropout(dropout), nn.Linear(dim_feedforward, d_model))  # fmt: skip
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model) for _ in range(3))
        self.drop = nn.Dropout(dropout)
        init = 0.0 if re_zero else 1.0
        self.res_weights = nn.Parameter(torch.full((3,), init), requires_grad=re_zero)

    def forward(
        self, x: Tensor, memory_kv: tuple[Tensor, Tensor], mask: Tensor | None = None,
        cache: dict[str, Tensor] | None = None,
    ) -> Tensor:  # fmt: skip
        h = self.norm1(x)
        k, v = self.self_attn.keys_values(h)
        if cache is not None:
            if 'k' in cache:
                k, v = torch.cat([cache['k'], k], dim=2), torch.cat([cache['v'], v], dim=2)
            cache['k'], cache['v'] = k, v
        x = x + self.res_weights[0] * self.drop(self.self_attn(h, k, v, mask))
        x = x + self.res_weights[1] * self.drop(self.cross_attn(self.norm2(x), *memory_kv))
        return x + self.res_weights[2] * self.drop(self.ffn(self.norm3(x)))


def nucleus_filter(logits: Tensor, top_p: float, top_k: int = 0) -> Tensor:
    """Sets logits outside the top-k / smallest set with cumulative probability ≥ top_p to -inf."""
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float('-inf'))
    if 0 < top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs > top_p  # keeps the token that crosses top_p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float('-inf'))
    return logits


class PolylineGenerator(BaseModule):
    """Class- and bbox-conditioned autoregressive polyline generator.

    Args:
        in_channels: BEV neck channels (memory).
        canvas_size: (W, H) quantisation canvas; the vocabulary has max(W, H) + 1 tokens.
        num_classes: Map classes.
        d_model: Transformer width.
        nhead: Attention heads.
        dim_feedforward: FFN width.
        dropout: Dropout.
        num_layers: Decoder layers.
        re_zero: ReZero residual gates.
        max_seq_length: Vertex positions of the position embedding.
        max_sample_length: Vertices generated at most per line at inference.
        top_p: Nucleus probability (inference).
        top_k: Top-k filter (0 = off).
        temperature: Softmax temperature (inference).
        greedy: Greedy decoding instead of sampling (deterministic evaluation).
        min_vertices: Stop is impossible before this many vertices (2: a line with fewer is invalid
            and dropped from the submission anyway; 0 = upstream, which may emit such lines).
        augmentation: Noise on the conditioning bbox and input vertices in training (`NoiseSythesis`).
        aug_p: Probability that a line is perturbed.
        aug_scale: Gaussian σ as a fraction of the canvas.
        init_cfg: mmengine init config.
    """

    def __init__(
        self,
        in_channels: int = 128,
        canvas_size: Sequence[int] = (200, 100),
        num_classes: int = 3,
        d_model: int = 256,
        nhead: int = 8,
        dim_feedforward: int = 512,
        dropout: float = 0.2,
        num_layers: int = 6,
        re_zero: bool = True,
        max_seq_length: int = 500,
        max_sample_length: int = 64,
        top_p: float = 0.9,
        top_k: int = 0,
        temperature: float = 1.0,
        greedy: bool = False,
        min_vertices: int = 2,
        augmentation: bool = True,
        aug_p: float = 0.3,
        aug_scale: float = 0.01,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.canvas_size = (int(canvas_size[0]), int(canvas_size[1]))
        self.vocab_size = max(self.canvas_size) + 1
        self.num_classes, self.d_model = num_classes, d_model
        self.max_seq_length, self.max_sample_length = max_seq_length, max_sample_length
        self.top_p, self.top_k, self.temperature, self.greedy = top_p, top_k, temperature, greedy
        self.min_vertices = min_vertices
        self.augmentation, self.aug_p, self.aug_scale = augmentation, aug_p, aug_scale
        self.condition_len = 1 + 4

        self.input_proj = nn.Conv2d(in_channels, d_model, 1)
        self.img_coord_embed = nn.Linear(2, d_model)
        self.label_embed = nn.Embedding(num_classes, d_model)
        self.vertex_embed = nn.Embedding(self.vocab_size, d_model)
        self.bbox_context_embed = nn.Embedding(3, d_model)
        self.coord_embed = nn.Embedding(2, d_model)
        self.pos_embeddings = nn.Embedding(max_seq_length, d_model)
        self.layers = nn.ModuleList(
            CausalDecoderLayer(d_model, nhead, dim_feedforward, dropout, re_zero)
            for _ in range(num_layers)
        )
        self.logits_head = nn.Linear(d_model, self.vocab_size)
        # token ranges per coordinate: x may stop (0) or be 1..W, y must be 1..H
        allowed = torch.zeros(2, self.vocab_size, dtype=torch.bool)
        allowed[0, : self.canvas_size[0] + 1] = True
        allowed[1, 1 : self.canvas_size[1] + 1] = True
        self.register_buffer('allowed', allowed, persistent=False)

    # ------------------------------------------------------------------ embeddings
    def memory(self, bev: Tensor) -> Tensor:
        """(B, C, H, W) BEV neck features → (B, HW, d_model)."""
        _, _, h, w = bev.shape
        x = self.input_proj(bev).flatten(2).transpose(1, 2)
        return x + self.img_coord_embed(coord_grid(h, w, x.device, x.dtype))

    def embed_condition(self, labels: Tensor, bbox_tokens: Tensor) -> Tensor:
        """(L,) classes and (L, 4) bbox tokens → (L, 5, d_model)."""
        idx = torch.arange(4, device=labels.device)
        bbox = (
            self.vertex_embed(bbox_tokens)
            + self.bbox_context_embed(idx // 2)
            + self.coord_embed(idx % 2)
        )
        return torch.cat([self.label_embed(labels)[:, None], bbox], dim=1)

    def embed_tokens(self, tokens: Tensor, start: int = 0) -> Tensor:
        """(L, T) vertex tokens at sequence positions start.. → (L, T, d_model)."""
        pos = torch.arange(start, start + tokens.shape[1], device=tokens.device)
        if tokens.shape[1] and int(pos[-1]) // 2 >= self.max_seq_length:
            raise ValueError(
                f'PolylineGenerator: sequence longer than max_seq_length={self.max_seq_length} vertices'
            )
        return self.vertex_embed(tokens) + self.coord_embed(pos % 2) + self.pos_embeddings(pos // 2)

    def causal_mask(self, length: int, device: torch.device) -> Tensor:
        """(length, length) bool, True = may attend: causal, but condition tokens see each other."""
        mask = torch.ones(length, length, dtype=torch.bool, device=device).tril()
        c = min(self.condition_len, length)
        mask[:c, :c] = True
        return mask

    def _memory_kv(self, memory: Tensor, sample_index: Tensor) -> list[tuple[Tensor, Tensor]]:
        # keys/values are projected once per sample, then gathered for that sample's lines
        return [
            tuple(t[sample_index] for t in layer.cross_attn.keys_values(memory))
            for layer in self.layers
        ]

    def _decode(self, x: Tensor, memory_kv, mask=None, caches=None) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x, memory_kv[i], mask, None if caches is None else caches[i])
        return x  # no final LayerNorm: upstream's CausalTransformerDecoder is built without `norm`

    def _logits(self, hidden: Tensor, first_index: int) -> Tensor:
        """Vocabulary logits of hidden states predicting tokens first_index, first_index + 1, ..."""
        logits = self.logits_head(hidden)
        index = torch.arange(hidden.shape[1], device=hidden.device) + first_index
        allowed = self.allowed[index % 2]
        early = index < 2 * self.min_vertices
        allowed[:, STOP_TOKEN] &= ~early
        return logits.masked_fill(~allowed, NEG_INF)

    # ------------------------------------------------------------------ training
    def _perturb(self, tokens: Tensor, axis_of: Tensor, active: Tensor) -> Tensor:
        """Gaussian noise (σ = aug_scale · canvas) on coordinate tokens of the lines in `active`.

        Each coordinate is clamped to its own axis range (upstream clamps every coordinate with the x
        one, §7.23)."""
        canvas = torch.tensor(self.canvas_size, device=tokens.device, dtype=torch.float32)[axis_of]
        noisy = (
            tokens.float()
            + torch.randn(tokens.shape, device=tokens.device) * self.aug_scale * canvas
        )
        noisy = torch.minimum(noisy.round().clamp(min=1), canvas).long()
        keep = ~active[:, None] | (tokens == STOP_TOKEN)
        return torch.where(keep, tokens, noisy)

    def loss(
        self, bev: Tensor, sample_index: Tensor, labels: Tensor, bbox_tokens: Tensor,
        tokens: Tensor, weights: Tensor,
    ) -> Tensor:  # fmt: skip
        """Weighted negative log-likelihood of the GT token sequences (teacher forcing).

        Args:
            bev: (B, C, H, W) BEV neck features.
            sample_index: (L,) sample of each line.
            labels: (L,) classes.
            bbox_tokens: (L, 4) conditioning bbox tokens (cell + 1).
            tokens: (L, T) GT sequences ending with STOP, right-padded with STOP.
            weights: (L, T) per-token loss weights, 0 on padding.
        """
        inputs = tokens[:, :-1]
        if self.training and self.augmentation and self.aug_p > 0:
            active = torch.rand(len(labels), device=labels.device) < self.aug_p
            bbox_tokens = self._perturb(
                bbox_tokens, torch.arange(4, device=labels.device) % 2, active
            )
            active = torch.rand(len(labels), device=labels.device) < self.aug_p
            inputs = self._perturb(
                inputs, torch.arange(inputs.shape[1], device=labels.device) % 2, active
            )
        x = torch.cat([self.embed_condition(labels, bbox_tokens), self.embed_tokens(inputs)], dim=1)
        hidden = self._decode(x, self._memory_kv(self.memory(bev), sample_index),
                              self.causal_mask(x.shape[1], x.device))  # fmt: skip
        logits = self._logits(hidden[:, self.condition_len - 1 :], 0)
        logp = logits.log_softmax(-1).gather(-1, tokens[..., None]).squeeze(-1)
        return -(logp * weights).sum() / weights.sum().clamp(min=1e-6)

    # ------------------------------------------------------------------ inference
    def _choose(self, logits: Tensor, greedy: bool) -> Tensor:
        if greedy:
            return logits.argmax(-1)
        logits = nucleus_filter(logits / self.temperature, self.top_p, self.top_k)
        return torch.multinomial(logits.softmax(-1), 1).squeeze(-1)

    def _finish(self, steps: list[Tensor]) -> list[np.ndarray]:
        """Token columns → per-line (n, 2) vertices in normalised (0, 1) coordinates."""
        if not steps:
            return []
        seqs = torch.stack(steps, dim=1).cpu().numpy()
        scale = np.asarray(self.canvas_size, dtype=np.float64) - 1
        out = []
        for seq in seqs:
            stop = np.flatnonzero(seq == STOP_TOKEN)
            seq = seq[: stop[0]] if len(stop) else seq
            seq = seq[: len(seq) // 2 * 2]
            out.append((seq.reshape(-1, 2).astype(np.float64) - 1) / scale)
        return out

    @torch.no_grad()
    def generate(
        self, bev: Tensor, sample_index: Tensor, labels: Tensor, bbox_tokens: Tensor,
        greedy: bool | None = None,
    ) -> list[np.ndarray]:  # fmt: skip
        """Polylines of the given (class, bbox) conditions, decoded with the key/value cache.

        Returns: one (n, 2) array per line, normalised (0, 1) canvas coordinates ((token − 1)/(canvas − 1)).
        """
        greedy = self.greedy if greedy is None else greedy
        if len(labels) == 0:
            return []
        memory_kv = self._memory_kv(self.memory(bev), sample_index)
        caches: list[dict[str, Tensor]] = [{} for _ in self.layers]
        cond = self.embed_condition(labels, bbox_tokens)
        hidden = self._decode(cond, memory_kv, None, caches)[:, -1:]
        finished = torch.zeros(len(labels), dtype=torch.bool, device=labels.device)
        steps: list[Tensor] = []
        for k in range(2 * self.max_sample_length + 1):
            token = self._choose(self._logits(hidden, k)[:, 0], greedy)
            token = token.masked_fill(finished, STOP_TOKEN)
            steps.append(token)
            finished |= token == STOP_TOKEN
            if bool(finished.all()) or k == 2 * self.max_sample_length:
                break
            hidden = self._decode(
                self.embed_tokens(token[:, None], start=k), memory_kv, None, caches
            )
        return self._finish(steps)

    @torch.no_grad()
    def generate_naive(
        self,
        bev: Tensor,
        sample_index: Tensor,
        labels: Tensor,
        bbox_tokens: Tensor,
        greedy: bool = True,
    ) -> list[np.ndarray]:
        """Reference decoder without cache: re-runs the whole prefix every step (slow, for tests)."""
        if len(labels) == 0:
            return []
        memory_kv = self._memory_kv(self.memory(bev), sample_index)
        cond = self.embed_condition(labels, bbox_tokens)
        finished = torch.zeros(len(labels), dtype=torch.bool, device=labels.device)
        steps: list[Tensor] = []
        for k in range(2 * self.max_sample_length + 1):
            prefix = torch.stack(steps, dim=1) if steps else bbox_tokens[:, :0]
            x = torch.cat([cond, self.embed_tokens(prefix)], dim=1)
            hidden = self._decode(x, memory_kv, self.causal_mask(x.shape[1], x.device))[:, -1:]
            token = self._choose(self._logits(hidden, k)[:, 0], greedy).masked_fill(
                finished, STOP_TOKEN
            )
            steps.append(token)
            finished |= token == STOP_TOKEN
            if bool(finished.all()):
                break
        return self._finish(steps)
