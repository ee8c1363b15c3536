"""
Quick start: a classifier with a photonic layer
===============================================

Train a network whose hidden layer is a simulated spatial light modulator,
count what training cost in device queries, pick the surrogate rank with a
grid search, and save the model safely.
"""

# %%
# A black-box layer between two digital layers
# ---------------------------------------------
# ``black_box="slm"`` puts a phase-only spatial light modulator (a 16 x 16
# mask here) between a digital input layer and a digital readout. Only the
# forward pass ever runs on the device.
import os
import tempfile

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split

from skhybrid import HybridClassifier
from skhybrid.callbacks import HeldOutScore
from skhybrid.persistence import load, save
from skhybrid.plotting import plot_learning_curve, plot_queries, plot_rank_search

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

clf = HybridClassifier(black_box="slm", hidden_units=16, rank=4, max_epochs=8,
                       callbacks=[HeldOutScore(X_test, y_test)], random_state=0)
clf.fit(X_train, y_train)
print(f"test accuracy {clf.score(X_test, y_test):.3f}")
print("black-box queries of the fit:", clf.n_queries_)

# %%
# What training looked like
# -------------------------
# The history has a row per epoch: the loss, the held-out score recorded by
# :class:`~skhybrid.callbacks.HeldOutScore`, the cumulative queries and the
# surrogate's error.
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
plot_learning_curve(clf, ["test_score"], ax=left)
plot_queries(clf, ax=right)
fig.tight_layout()

# %%
# Choosing the rank
# -----------------
# The surrogate's rank is an ordinary hyperparameter. A small search on
# part of the data, two folds (:doc:`/guide/dask` runs bigger ones on a cluster):
search = GridSearchCV(
    HybridClassifier(black_box="slm", hidden_units=16, max_epochs=8, lr=0.02, random_state=0),
    {"rank": [1, 4, 8]}, cv=2)
search.fit(X_train[:300], y_train[:300])
print("best:", search.best_params_)
fig, ax = plt.subplots(figsize=(5, 3.5))
plot_rank_search(search, ax=ax)
fig.tight_layout()

# %%
# Saving without pickle
# ---------------------
# :func:`skhybrid.persistence.save` writes the skops format, which holds no
# pickle; :func:`~skhybrid.persistence.load` checks every type in the file
# against a trusted list before creating anything.
path = os.path.join(tempfile.mkdtemp(), "digits.skops")
save(clf, path)
same = load(path)
print("same predictions after loading:", (same.predict(X_test) == clf.predict(X_test)).all())
