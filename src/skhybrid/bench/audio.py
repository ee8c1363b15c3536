"""``skhybrid bench audio``: spoken digits (FSDD) from log-mel features.

Features come from :class:`skhybrid.features.AudioFeatures` (32 log-mel
bands of 32 ms windows every 16 ms, librosa): per-band mean and standard
deviation pooled over time (64 values) for the MLP, and the 32 x 48 frame
sequence for a small 1-D conv net whose embedding layer is the black box (as
ECAPA-TDNN's final FC is in the paper). Two splits: the customary one
(takes 0-4 of every speaker and digit are the test set) and a
speaker-held-out one (``theo`` is never heard in training).

Settings, as in :mod:`skhybrid.bench.image`: ``standard`` (the default
MLP; the conv net with trainable conv layers, embedding 32) and
``bottleneck`` (``architecture="front"``, 64 -> 16; the conv net with its
conv layers fixed at random, embedding 16).
"""

from ._runner import expand
from .image import ABLATIONS, CHEAP, CORE, DEVICES, MODES
from .report import classification_report

__all__ = ["specs", "report"]


def specs(quick=False, seeds=3):
    """The run specs of the audio task."""
    if quick:
        base = dict(task="audio", dataset="fsdd-pooled", split="customary", epochs=2,
                    batch_size=32)
        settings = [dict(setting="bottleneck", model="mlp-front", width=16,
                         modes={"slm": ("digital", "frozen", "exact", "astralora")})]
        return expand(base, settings, 1)
    out = []
    basic = ("digital", "exact", "frozen", "astralora")
    for split in ("customary", "speaker"):
        pooled = dict(task="audio", dataset="fsdd-pooled", split=split, epochs=6, batch_size=32)
        seq = dict(task="audio", dataset="fsdd-seq", split=split, epochs=6, batch_size=32)
        if split == "customary":
            mlp = {d: basic for d in DEVICES}
            for d in CHEAP:
                mlp[d] = CORE
            mlp_std = dict(mlp, slm=CORE + ABLATIONS)
            settings = [dict(setting="standard", model="mlp-hidden", width=64, modes=mlp_std),
                        dict(setting="bottleneck", model="mlp-front", width=16, modes=mlp)]
            conv = [dict(setting="standard", model="conv1d", width=32, channels=16,
                         modes={d: basic for d in CHEAP}),
                    dict(setting="bottleneck", model="conv1d-fixed", width=16, channels=32,
                         modes={d: basic for d in CHEAP})]
        else:
            # The harder split, with fewer configurations: the photonic devices only.
            settings = [dict(setting="standard", model="mlp-hidden", width=64,
                             modes={d: basic for d in CHEAP}),
                        dict(setting="bottleneck", model="mlp-front", width=16,
                             modes={d: basic for d in CHEAP})]
            conv = [dict(setting="bottleneck", model="conv1d-fixed", width=16, channels=32,
                         modes={d: basic for d in CHEAP})]
        out += expand(pooled, settings, seeds) + expand(seq, conv, seeds)
    return out


def report(results, out_dir):
    """Markdown summary (and plots in ``out_dir``) of the audio task's results."""
    return classification_report(results, out_dir, "audio", MODES)
