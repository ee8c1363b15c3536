"""Hyperparameter searches on a Dask cluster, through joblib's Dask backend.

scikit-learn parallelises ``GridSearchCV``, ``cross_val_score`` and friends
with joblib; joblib's ``"dask"`` backend sends those tasks to the workers
of a ``dask.distributed`` cluster. :func:`dask_backend` sets that backend up
for a block of code and first makes every worker run torch with a fixed
number of threads (one by default), so that a worker with one Dask thread
per core does not also start one torch thread per core for each task.

.. code-block:: python

    from dask.distributed import Client
    from sklearn.model_selection import GridSearchCV
    from skhybrid import HybridClassifier
    from skhybrid.distributed import dask_backend

    client = Client("tcp://scheduler:8786")       # or Client(LocalCluster(...))
    search = GridSearchCV(HybridClassifier(random_state=0),
                          {"rank": [2, 4, 8], "zo_samples": [8, 16]}, cv=3, n_jobs=-1)
    with dask_backend(client):
        search.fit(X, y)

Results are those of a run on one machine with the same ``random_state``:
each fit seeds itself, wherever it runs. Every worker needs skhybrid (and
the packages of any device function or module you pass) installed.

Needs ``dask[distributed]`` (``pip install 'skhybrid[dask]'``).
"""

import contextlib

__all__ = ["TorchThreads", "configure_workers", "dask_backend", "set_torch_threads"]


def set_torch_threads(n_threads):
    """Set torch's intra-op and inter-op thread counts in this process; return the new count.

    Run on each worker by :func:`configure_workers`. The inter-op count can
    only be set before torch first uses it; after that it is left as it is.
    """
    import torch

    n_threads = int(n_threads)
    torch.set_num_threads(n_threads)
    try:
        torch.set_num_interop_threads(n_threads)
    except RuntimeError:
        pass  # already started in this process: only the intra-op pool can change
    return torch.get_num_threads()


def _distributed():
    try:
        import distributed
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "skhybrid.distributed needs dask.distributed: pip install 'skhybrid[dask]'"
        ) from None
    return distributed


try:
    from distributed import WorkerPlugin as _WorkerPlugin
except ImportError:  # pragma: no cover - the class is then unusable, as documented
    _WorkerPlugin = object


class TorchThreads(_WorkerPlugin):
    """A Dask worker plugin that sets torch's thread count on every worker, now and later.

    Register it with ``client.register_plugin(TorchThreads(n))``
    (:func:`configure_workers` does): workers that join the cluster
    afterwards run it too.

    Parameters
    ----------
    n_threads : int, default=1
    """

    name = "skhybrid-torch-threads"

    def __init__(self, n_threads=1):
        self.n_threads = int(n_threads)

    def setup(self, worker):
        """Called by Dask on each worker."""
        set_torch_threads(self.n_threads)


def configure_workers(client, torch_threads=1):
    """Make every worker of ``client``'s cluster, present and future, use ``torch_threads``.

    Parameters
    ----------
    client : distributed.Client
    torch_threads : int, default=1
        Threads per worker process for torch. One suits workers with one
        Dask thread per core; give more to workers with fewer Dask threads
        than cores.

    Returns
    -------
    dict
        ``{worker address: torch thread count}`` as the workers report it.
    """
    if isinstance(torch_threads, bool) or not isinstance(torch_threads, int) or torch_threads < 1:
        raise ValueError(f"torch_threads must be an int >= 1; got {torch_threads!r}")
    plugin = TorchThreads(torch_threads)
    register = getattr(client, "register_plugin", None) or client.register_worker_plugin
    register(plugin, name=plugin.name)
    return client.run(set_torch_threads, torch_threads)


@contextlib.contextmanager
def dask_backend(client=None, *, torch_threads=1, **backend_options):
    """Run scikit-learn's joblib parallelism on a Dask cluster inside a ``with`` block.

    Parameters
    ----------
    client : distributed.Client or None, default=None
        The cluster to use; ``None`` takes the current default client
        (the last one created in this process).
    torch_threads : int or None, default=1
        Torch threads per worker (see :func:`configure_workers`); ``None``
        leaves the workers as they are.
    **backend_options
        Passed to ``joblib.parallel_config`` (for example ``scatter=[X, y]``
        to send the data to the workers once).

    Yields
    ------
    client : distributed.Client

    Notes
    -----
    Inside the block, an estimator's ``n_jobs`` counts Dask tasks: ``-1``
    runs as many at once as the cluster has worker threads. The backend
    applies to every joblib call made in the block, in this process.
    """
    import joblib

    distributed = _distributed()
    if client is None:
        client = distributed.get_client()
    if torch_threads is not None:
        configure_workers(client, torch_threads)
    with joblib.parallel_config(backend="dask", client=client, **backend_options):
        yield client
