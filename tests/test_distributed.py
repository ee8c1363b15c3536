"""A grid search on a two-worker Dask cluster on loopback equals the serial one."""

import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV

from skhybrid import HybridClassifier

distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is not installed (the dask extra)")
skd = pytest.importorskip("skhybrid.distributed")

SMALL = dict(black_box="slm", hidden_units=6, rank=1, zo_samples=4, max_epochs=2, random_state=0)
GRID = {"rank": [1, 2]}


def _skhybrid_imported():
    return "skhybrid.estimators" in sys.modules


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    client = distributed.Client(cluster)
    # Worker processes start in the background: wait for both (a loaded CI
    # machine may take longer than joblib's 10 s wait for workers).
    client.wait_for_workers(2, timeout=120)
    yield client
    client.close()
    cluster.close()


def test_grid_search_on_dask_equals_the_serial_run(client):
    X, y = load_iris(return_X_y=True)
    serial = GridSearchCV(HybridClassifier(**SMALL), GRID, cv=2).fit(X, y)
    search = GridSearchCV(HybridClassifier(**SMALL), GRID, cv=2, n_jobs=-1)
    with skd.dask_backend(client) as active:
        assert active is client
        assert set(client.run(torch.get_num_threads).values()) == {1}
        search.fit(X, y)
    # The fits ran on the workers, which imported skhybrid for them.
    assert all(client.run(_skhybrid_imported).values())
    for key in ("mean_test_score", "std_test_score", "rank_test_score"):
        assert np.array_equal(search.cv_results_[key], serial.cv_results_[key])
    assert search.best_params_ == serial.best_params_
    assert np.array_equal(search.predict_proba(X), serial.predict_proba(X))


def test_worker_threads_are_configurable(client):
    try:
        assert set(skd.configure_workers(client, torch_threads=2).values()) == {2}
    finally:
        assert set(skd.configure_workers(client, torch_threads=1).values()) == {1}
    with pytest.raises(ValueError, match="torch_threads"):
        skd.configure_workers(client, torch_threads=0)


def test_the_plugin_sets_threads_where_it_runs():
    before = torch.get_num_threads()
    skd.TorchThreads(1).setup(worker=None)
    assert torch.get_num_threads() == 1
    torch.set_num_threads(before)
