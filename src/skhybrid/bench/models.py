"""The benchmark's networks, each holding one or more black-box layers.

Every network takes a ``make_layer(d_in, d_out)`` callable, as
:mod:`skhybrid.modules` does; :class:`BenchLayerFactory` builds the layer of
one benchmark *mode* (a gradient mode of :class:`~skhybrid.BlackBoxLayer`,
the paper's emulated settings, or the digital twin).

* :class:`SmallCNN`: two 3x3 conv blocks on 8 x 8 images, the black box as
  the hidden fully connected layer, a linear readout.
* :class:`Conv1dNet`: a small TDNN-like 1-D conv net over a log-mel sequence,
  mean and standard-deviation pooling over time, the black box as the
  embedding layer (as ECAPA-TDNN's final FC in the paper), a linear readout.
* :class:`CharTransformer`: a character-level decoder-only transformer whose
  last block(s) have their feed-forward block replaced by one black-box
  layer ``d_model -> d_model`` (the paper's ``--replace_feedforward``).

``trainable_features=False`` fixes the convolutional feature extractor at its
random initialisation: the bottleneck setting, where the black box has to
carry the capacity.
"""

import torch
from torch import nn

from ..black_boxes import make_black_box
from ..layers import BlackBoxLayer
from ..modules import Standardize
from .paper import PaperBlackBoxLayer

__all__ = ["MODES", "BenchLayerFactory", "CharTransformer", "Conv1dNet", "SmallCNN", "char_batches"]

#: Benchmark modes: "digital" (nn.Linear twin), the layer's gradient modes,
#: "paper" (the reference's settings, lagged surrogate) and "astralora" (ours).
MODES = ("digital", "exact", "frozen", "svd", "zo_only", "surrogate_only", "paper", "astralora")


class BenchLayerFactory:
    """``factory(d_in, d_out)``: the black-box layer of one benchmark run.

    Parameters
    ----------
    black_box : str
        Device name (:func:`~skhybrid.make_black_box`), or ``"digital"``.
    mode : str
        One of :data:`MODES`. ``"digital"`` builds ``nn.Linear(d_in, d_out,
        bias=False)`` whatever ``black_box`` says.
    rank, zo_samples, surrogate_samples
        Layer settings; ``rank`` is clipped to ``min(d_in, d_out)``. In
        ``"paper"`` mode ``surrogate_samples="auto"`` means ``zo_samples``
        (the paper's ``M_SM = M_BB``).
    random_state : int, default=0
        The k-th layer built gets device seed ``random_state * 1000 + k``,
        so every mode of one seed starts from the same device.
    layer_options : dict or None
        Further :class:`~skhybrid.BlackBoxLayer` options.
    """

    def __init__(self, black_box, mode, rank=8, zo_samples=16, surrogate_samples="auto",
                 random_state=0, layer_options=None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}; got {mode!r}")
        self.black_box = black_box
        self.mode = mode
        self.rank = rank
        self.zo_samples = zo_samples
        self.surrogate_samples = surrogate_samples
        self.random_state = random_state
        self.layer_options = layer_options
        self.n_built = 0

    @property
    def digital(self):
        return self.mode == "digital" or self.black_box == "digital"

    def __call__(self, d_in, d_out):
        k = self.n_built
        self.n_built += 1
        if self.digital:
            return nn.Linear(d_in, d_out, bias=False)
        seed = int(self.random_state) * 1000 + k
        box = make_black_box(self.black_box, d_in, d_out, random_state=seed)
        rank = min(int(self.rank), d_in, d_out)
        options = dict(self.layer_options or {})
        if self.mode == "paper":
            return PaperBlackBoxLayer(box, rank=rank, zo_samples=int(self.zo_samples),
                                      surrogate_samples=self.surrogate_samples,
                                      random_state=seed + 17, **options)
        return BlackBoxLayer(box, rank=rank, zo_samples=int(self.zo_samples),
                             surrogate_samples=self.surrogate_samples, gradient=self.mode,
                             random_state=seed + 17, **options)


def _freeze(module):
    for p in module.parameters():
        p.requires_grad_(False)
    return module


class SmallCNN(nn.Module):
    """``conv3x3 -> ReLU -> pool -> conv3x3 -> ReLU -> pool -> black box -> tanh -> Linear``.

    Parameters
    ----------
    n_outputs : int
    make_layer : callable
        ``make_layer(d_in, d_out)`` builds the hidden fully connected layer.
    image_shape : tuple, default=(1, 8, 8)
        ``(channels, height, width)`` of the flattened input rows.
    channels : int, default=16
        Filters of both conv layers; the black box sees ``channels * (H/4) *
        (W/4)`` features (64 for digits).
    hidden_units : int, default=64
        Output width of the black box.
    trainable_features : bool, default=True
        ``False`` keeps the conv layers at their random initialisation.
    """

    def __init__(self, n_outputs, make_layer, image_shape=(1, 8, 8), channels=16,
                 hidden_units=64, trainable_features=True):
        super().__init__()
        c, h, w = image_shape
        self.image_shape = tuple(image_shape)
        self.standardize = Standardize(c * h * w)
        self.features = nn.Sequential(
            nn.Conv2d(c, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        if not trainable_features:
            _freeze(self.features)
        n_flat = channels * (h // 4) * (w // 4)
        self.norm = nn.LayerNorm(n_flat, elementwise_affine=False)
        self.black_box_layer = make_layer(n_flat, hidden_units)
        self.output_layer = nn.Linear(hidden_units, n_outputs)

    def forward(self, x):
        x = self.standardize(x).reshape(-1, *self.image_shape)
        h = torch.tanh(self.norm(self.features(x)))
        return self.output_layer(torch.tanh(self.black_box_layer(h)))


class Conv1dNet(nn.Module):
    """A small 1-D conv net over a feature sequence, the black box as its embedding layer.

    ``Conv1d(k=5) -> ReLU -> Conv1d(k=3, dilation 2) -> ReLU -> mean/std
    pooling over time -> tanh -> black box (embedding) -> tanh -> Linear``.

    Parameters
    ----------
    n_outputs : int
    make_layer : callable
    n_bands, n_frames : int, default=32 and 48
        Shape of each (flattened) input row, ``(n_bands, n_frames)``.
    channels : int, default=32
        Conv channels; the black box sees ``2 * channels`` pooled statistics.
    embedding : int, default=32
        Output width of the black box.
    trainable_features : bool, default=True
        ``False`` keeps the conv layers at their random initialisation.
    """

    def __init__(self, n_outputs, make_layer, n_bands=32, n_frames=48, channels=32,
                 embedding=32, trainable_features=True):
        super().__init__()
        self.n_bands, self.n_frames = int(n_bands), int(n_frames)
        self.standardize = Standardize(self.n_bands * self.n_frames)
        self.features = nn.Sequential(
            nn.Conv1d(self.n_bands, channels, 5, padding=2), nn.ReLU(),
            nn.Conv1d(channels, channels, 3, padding=2, dilation=2), nn.ReLU(),
        )
        if not trainable_features:
            _freeze(self.features)
        self.norm = nn.LayerNorm(2 * channels, elementwise_affine=False)
        self.black_box_layer = make_layer(2 * channels, embedding)
        self.output_layer = nn.Linear(embedding, n_outputs)

    def forward(self, x):
        x = self.standardize(x).reshape(-1, self.n_bands, self.n_frames)
        h = self.features(x)
        pooled = torch.cat([h.mean(-1), h.std(-1)], dim=-1)
        emb = torch.tanh(self.black_box_layer(torch.tanh(self.norm(pooled))))
        return self.output_layer(emb)


class _Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(ln(x))``, then ``x + ffn(ln(x))``."""

    def __init__(self, d_model, n_heads, context, ffn):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, n_heads, batch_first=True, bias=False)
        self.ln2 = nn.LayerNorm(d_model)
        self.ffn = ffn
        mask = torch.triu(torch.ones(context, context, dtype=torch.bool), diagonal=1)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x):
        T = x.shape[1]
        h = self.ln1(x)
        a, _ = self.attn(h, h, h, attn_mask=self.mask[:T, :T], need_weights=False)
        x = x + a
        if self.ffn is not None:
            x = x + self.ffn(self.ln2(x))
        return x


def _mlp(d_model):
    return nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(),
                         nn.Linear(4 * d_model, d_model))


class CharTransformer(nn.Module):
    """A character-level decoder-only transformer; the last FFN(s) can be black boxes.

    Parameters
    ----------
    n_chars : int
        Vocabulary size.
    make_layer : callable or None
        Builds the replacement of a feed-forward block, ``(d_model, d_model)``.
    d_model, n_heads, n_layers, context : int, default=64, 4, 2, 64
    n_replaced : int, default=1
        How many of the last blocks have their FFN replaced.
    replacement : {"layer", "identity", "none"}, default="layer"
        ``"layer"``: ``make_layer``'s module (a black box, or an nn.Linear
        for the digital twin); ``"identity"``: the FFN removed (the paper's
        ``id`` baseline); ``"none"``: keep every MLP (the full digital model).

    Notes
    -----
    The replacement is linear, as in the paper: the block's FFN becomes one
    ``d_model x d_model`` map in the residual stream. Token and position
    embeddings are learned; the output head is tied to the token embedding.
    """

    def __init__(self, n_chars, make_layer=None, d_model=64, n_heads=4, n_layers=2,
                 context=64, n_replaced=1, replacement="layer"):
        super().__init__()
        if replacement not in ("layer", "identity", "none"):
            raise ValueError(f'replacement must be "layer", "identity" or "none"; '
                             f'got {replacement!r}')
        self.context = int(context)
        self.tok = nn.Embedding(n_chars, d_model)
        self.pos = nn.Embedding(context, d_model)
        blocks = []
        for i in range(n_layers):
            replaced = replacement != "none" and i >= n_layers - n_replaced
            if not replaced:
                ffn = _mlp(d_model)
            elif replacement == "identity":
                ffn = None
            else:
                ffn = make_layer(d_model, d_model)
            blocks.append(_Block(d_model, n_heads, context, ffn))
        self.blocks = nn.ModuleList(blocks)
        self.ln = nn.LayerNorm(d_model)
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.normal_(self.tok.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)

    def forward(self, idx):
        T = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(T, device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.ln(x) @ self.tok.weight.T

    @staticmethod
    def loss(logits, targets):
        """Mean cross-entropy in nats per character."""
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                           targets.reshape(-1))


def char_batches(ids, batch_size, context, generator):
    """A random batch of ``(inputs, targets)`` windows from a 1-D id tensor."""
    starts = torch.randint(0, len(ids) - context - 1, (batch_size,), generator=generator)
    offsets = torch.arange(context)
    X = ids[starts[:, None] + offsets]
    Y = ids[starts[:, None] + offsets + 1]
    return X, Y
