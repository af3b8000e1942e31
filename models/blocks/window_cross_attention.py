"""Window multi-head cross-attention with a relative position bias (LRDif Eq. 5-9, POSTER++).

Image features ``X`` are cut into non-overlapping ``w x w`` windows; landmark features are
resized to one window (``h * w = M`` in the paper) and give the queries of *every* window::

    Q = LN(x_lmk) W_Q,  K = LN(x_img) W_K,  V = LN(x_img) W_V                  (Eq. 5)
    O_i = softmax(Q_i K_i^T / sqrt(d) + b) V_i,  O = [O_1 .. O_N] W_O             (Eq. 6-7)
    X'  = X + O                                                                 (Eq. 8)
    X'' = X' + MLP(LN(X'))                                                      (Eq. 9)

``b`` is a learned table indexed by the relative offset of query and key inside the window
(Swin / POSTER++). With one window per map (POSTER++'s default) this is plain cross-attention
over the whole map.

The official POSTER++ block differs in three places, each a setting (defaults = the form above,
which LRDif uses): the landmark features are the queries as they are, without ``LN`` and
``W_Q`` (``query_norm=False, query_proj=False``), and the attention residual starts from the
*normalised* image, ``X' = LN(X) + O`` (``norm_residual=True``). Stochastic depth draws its
per-sample masks from the generator passed to ``forward`` (the step generator).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..batch_augment import drop_path, sample_drop_path


def window_partition(x: Tensor, window: int) -> Tensor:
    """``(B, H, W, C)`` -> ``(B * nW, window * window, C)``, windows in row-major order."""
    b, h, w, c = x.shape
    if h % window or w % window:
        raise ValueError(f"window_partition: a {h}x{w} map does not split into {window}x{window} windows")
    x = x.reshape(b, h // window, window, w // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window * window, c)


def window_reverse(windows: Tensor, window: int, h: int, w: int) -> Tensor:
    """Inverse of :func:`window_partition`: ``(B * nW, window^2, C)`` -> ``(B, H, W, C)``."""
    c = windows.shape[-1]
    x = windows.reshape(-1, h // window, w // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


def relative_position_index(window: int) -> Tensor:
    """``(window^2, window^2)`` index into a ``(2*window-1)^2`` bias table: entry ``[i, j]``
    encodes the (row, column) offset of position ``i`` relative to position ``j``."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[..., 0] * (2 * window - 1) + rel[..., 1]


class WindowCrossAttention(nn.Module):
    """Multi-head attention of shared queries on the tokens of every window (Eq. 5-7).

    Args:
        dim: token channels (divisible by ``heads``).
        heads: attention heads.
        window: window side ``w`` (``w * w`` tokens per window).
        qkv_bias: biases in the query / key / value projections.
        query_proj: project the queries with ``W_Q``; ``False`` uses the landmark tokens as
            the queries directly (official POSTER++).
    """

    def __init__(self, dim: int, heads: int, window: int, qkv_bias: bool = True, query_proj: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"WindowCrossAttention: dim {dim} is not divisible by heads {heads}")
        self.heads, self.window = heads, window
        self.q = nn.Linear(dim, dim, bias=qkv_bias) if query_proj else nn.Identity()
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        self.register_buffer("bias_index", relative_position_index(window), persistent=False)

    def position_bias(self) -> Tensor:
        """``(heads, w^2, w^2)`` relative position bias ``b``."""
        n = self.window * self.window
        return self.bias_table[self.bias_index.reshape(-1)].reshape(n, n, self.heads).permute(2, 0, 1)

    def forward(self, windows: Tensor, query: Tensor) -> Tensor:
        """``windows``: ``(B * nW, N, C)`` image tokens; ``query``: ``(B, N, C)`` landmark
        tokens shared by the ``nW`` windows of each image -> ``(B * nW, N, C)``."""
        bw, n, c = windows.shape
        b = query.shape[0]
        if query.shape[1:] != (n, c) or bw % b:
            raise ValueError(f"WindowCrossAttention: query {tuple(query.shape)} does not fit "
                             f"windows {tuple(windows.shape)}")
        hd = c // self.heads
        k, v = self.kv(windows).reshape(bw, n, 2, self.heads, hd).permute(2, 0, 3, 1, 4)
        q = self.q(query).reshape(b, 1, n, self.heads, hd).expand(b, bw // b, n, self.heads, hd)
        q = q.reshape(bw, n, self.heads, hd).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=self.position_bias().unsqueeze(0))
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class Mlp(nn.Module):
    """Linear -> GELU -> Linear."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class WindowCrossAttentionBlock(nn.Module):
    """Eq. 8-9 on a feature map: ``X + MHCA(X, landmarks)``, then ``+ MLP(LN(.))``.

    Args:
        dim, heads, window: as :class:`WindowCrossAttention`.
        mlp_ratio: MLP hidden size / ``dim`` (POSTER++: 4).
        layer_scale: initial value of per-channel residual scales (POSTER++: 1e-5); ``None``
            for plain residuals.
        drop_path: stochastic-depth rate of both residual branches in training (0 in LRDif;
            POSTER++: 0, 0.125, 0.25 over the three scales); masks come from the
            ``generator`` given to :meth:`forward`.
        query_norm: LayerNorm on the landmark tokens before the attention (official POSTER++:
            no).
        query_proj: see :class:`WindowCrossAttention`.
        norm_residual: the attention residual adds to ``LN(X)`` instead of ``X`` (official
            POSTER++).
    """

    def __init__(self, dim: int, heads: int, window: int, mlp_ratio: float = 4.0,
                 layer_scale: float | None = None, drop_path: float = 0.0, *, query_norm: bool = True,
                 query_proj: bool = True, norm_residual: bool = False):
        super().__init__()
        if not 0 <= drop_path < 1:
            raise ValueError(f"WindowCrossAttentionBlock: drop_path must be in [0, 1), got {drop_path}")
        self.window = window
        self.norm_residual = norm_residual
        self.norm_image = nn.LayerNorm(dim)
        self.norm_query = nn.LayerNorm(dim) if query_norm else nn.Identity()
        self.attn = WindowCrossAttention(dim, heads, window, query_proj=query_proj)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        if layer_scale is None:
            self.gamma_attn = self.gamma_mlp = None
        else:
            self.gamma_attn = nn.Parameter(torch.full((dim,), float(layer_scale)))
            self.gamma_mlp = nn.Parameter(torch.full((dim,), float(layer_scale)))
        self.drop_rate = float(drop_path)

    def _branch(self, x: Tensor, gamma: Tensor | None, generator: torch.Generator | None) -> Tensor:
        """A residual branch: layer scale, then stochastic depth in training."""
        x = x if gamma is None else x * gamma
        if self.training and self.drop_rate > 0:
            x = drop_path(x, sample_drop_path(x.shape[0], self.drop_rate, generator), self.drop_rate)
        return x

    def forward(self, image: Tensor, landmarks: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``image``: ``(B, C, H, W)``; ``landmarks``: ``(B, C, h, w)`` (resized to one window)
        -> ``(B, C, H, W)``. ``generator``: stochastic-depth draws (training with
        ``drop_path > 0``; ``None`` = the global generator)."""
        b, c, h, w = image.shape
        if landmarks.shape[:2] != (b, c):
            raise ValueError(f"WindowCrossAttentionBlock: landmark features {tuple(landmarks.shape)} "
                             f"do not match image features {tuple(image.shape)}")
        if landmarks.shape[-2:] != (self.window, self.window):
            landmarks = F.adaptive_avg_pool2d(landmarks, self.window)
        x = image.permute(0, 2, 3, 1)
        query = self.norm_query(landmarks.flatten(2).transpose(1, 2))
        normed = self.norm_image(x)
        out = self.attn(window_partition(normed, self.window), query)
        x = (normed if self.norm_residual else x) + self._branch(window_reverse(out, self.window, h, w),
                                                                 self.gamma_attn, generator)
        x = x + self._branch(self.mlp(self.norm_mlp(x)), self.gamma_mlp, generator)
        return x.permute(0, 3, 1, 2)
