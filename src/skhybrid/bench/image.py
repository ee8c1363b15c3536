"""``skhybrid bench image``: scikit-learn's digits with an MLP and a small CNN.

Settings (the black box is the hidden fully connected layer):

* ``standard``: the estimators' default MLP (``architecture="hidden"``,
  64 -> 64 black box) and a small CNN (two trainable conv blocks, black box
  64 -> 64, linear readout). Here the digital layers can adapt to any fixed
  device, so even a frozen black box scores close to digital.
* ``bottleneck``: the device carries the capacity. The MLP is
  ``architecture="front"`` (the black box is the first layer, 64 -> 16, a
  16 -> 10 readout); the CNN keeps its conv layers at their random
  initialisation and the black box maps their 64 features to 16. The
  figure of merit is the share of the frozen-to-exact gap ``astralora``
  closes.

CIFAR-10 (:func:`skhybrid.datasets.load_cifar10`, needs torchvision) runs
the same CNN with ``--dataset cifar10`` in user code; it is not part of the
benchmark grid here.
"""

from ._runner import expand
from .report import classification_report

__all__ = ["specs", "report"]

DEVICES = ("matrix", "slm", "mrr", "mzi", "monarch")
PHOTONIC = ("slm", "mrr", "mzi")
#: The photonic devices cheap enough for every network.
CHEAP = ("slm", "mrr")
CORE = ("digital", "exact", "frozen", "paper", "astralora")
ABLATIONS = ("svd", "zo_only", "surrogate_only")
MODES = CORE[:3] + ABLATIONS + CORE[3:]


def specs(quick=False, seeds=3):
    """The run specs of the image task."""
    if quick:
        base = dict(task="image", dataset="digits", epochs=3, batch_size=32)
        settings = [dict(setting="bottleneck", model="mlp-front", width=16,
                         modes={"slm": ("digital", "frozen", "exact", "astralora")})]
        return expand(base, settings, 1)
    base = dict(task="image", dataset="digits", epochs=10, batch_size=32)
    basic = ("digital", "exact", "frozen", "astralora")
    # The MZI mesh costs about ten times the other devices per configuration, so it runs
    # in the MLPs only, without the paper's settings.
    mlp_std = {d: CORE for d in DEVICES}
    mlp_std["slm"] = CORE + ABLATIONS
    mlp_std["mzi"] = basic
    mlp_bot = {d: CORE for d in DEVICES}
    mlp_bot["mzi"] = basic
    settings = [
        dict(setting="standard", model="mlp-hidden", width=64, modes=mlp_std),
        dict(setting="bottleneck", model="mlp-front", width=16, modes=mlp_bot),
        dict(setting="standard", model="cnn", width=64, modes={d: basic for d in CHEAP}),
        dict(setting="bottleneck", model="cnn-fixed", width=16,
             modes={d: basic for d in CHEAP}),
    ]
    return expand(base, settings, seeds)


def report(results, out_dir):
    """Markdown summary (and plots in ``out_dir``) of the image task's results."""
    return classification_report(results, out_dir, "image", MODES)
