"""
Plugging in your own device
===========================

A real instrument enters as a function ``fn(X, params) -> Y``: program the
device with ``params``, send each row of ``X``, return the measurements.
Here a numpy stand-in plays the device: a phase mask with a little readout
noise. Training only ever calls it forward, and every call is counted.
"""

# %%
# The device function
# -------------------
# It must be a module-level function (or a class instance) so that the
# estimator can be cloned and saved.
import numpy as np
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

from skhybrid import CallableBlackBox, HybridClassifier

WIDTH = 8
readout = np.random.default_rng(0)


def phase_mask(X, params):
    """Program an 8 x 8 phase mask with ``params`` and measure ``X`` through it."""
    weights = np.cos(params.reshape(WIDTH, WIDTH)) / np.sqrt(WIDTH)
    Y = X @ weights.T
    return Y + 1e-3 * readout.standard_normal(Y.shape)  # detector noise


box = CallableBlackBox(phase_mask, d_in=WIDTH, d_out=WIDTH, n_params=WIDTH * WIDTH,
                       params0=np.random.default_rng(1).uniform(1.4, 1.7, WIDTH * WIDTH),
                       mu=1e-2, timeout=5.0)

# %%
# Training through it
# -------------------
# The device maps ``hidden_units -> hidden_units``; a real device is never
# differentiated, so the default ``gradient="astralora"`` is the one to use.
X, y = load_iris(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
clf = HybridClassifier(black_box=box, hidden_units=WIDTH, rank=4, zo_samples=8,
                       max_epochs=12, batch_size=16, lr=0.01, random_state=0)
clf.fit(X_train, y_train)
print(f"test accuracy {clf.score(X_test, y_test):.3f}")

# %%
# What it cost
# ------------
# Vectors sent and reconfigurations, by purpose: the forward pass, the
# zeroth-order probes of the parameter gradient, and the surrogate probes.
layer = clf.net_.module_.black_box_layer
for purpose, count in layer.n_queries.items():
    print(f"{purpose:>9}: {count['vectors']:>7,} vectors, {count['configurations']:>5,} "
          "configurations")
print("faults:", layer.n_faults)
