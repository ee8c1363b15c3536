"""The documentation site builds with warnings as errors, and every example runs."""

import os
import pathlib
import runpy
import shutil
import subprocess
import sys
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))
_GENERATED = ("_build", "auto_examples", "sg_execution_times.rst")


def _needs(*modules):
    for name in modules:
        pytest.importorskip(name, reason=f"{name} is not installed (the docs extra)")


def _copy_sources(tmp_path):
    """docs/ and examples/ side by side in tmp_path: the gallery writes into its source."""
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns(*_GENERATED))
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    return tmp_path / "docs"


def test_the_site_builds_without_warnings(tmp_path):
    _needs("sphinx", "numpydoc", "sphinx_gallery", "myst_parser")
    source = _copy_sources(tmp_path)
    out = tmp_path / "html"
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                        os.environ.get("PYTHONPATH")])))
    # plot_gallery=0: the gallery pages are built without running the
    # examples, which test_example_runs below runs in this process instead.
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-D",
               "plot_gallery=0", "-b", "html", str(source), str(out)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    api = (out / "api.html").read_text(encoding="utf-8")
    for name in ("HybridClassifier", "BlackBoxLayer", "plot_rank_search", "dask_backend",
                 "TRUSTED_TYPES"):
        assert name in api
    for page in ("method", "black_boxes", "choosing", "own_device", "monitoring",
                 "persistence", "dask"):
        assert (out / "guide" / f"{page}.html").exists()
    gallery = (out / "auto_examples" / "index.html").read_text(encoding="utf-8")
    for example in EXAMPLES:
        assert example.stem in gallery
    benchmarks = (out / "benchmarks.html").read_text(encoding="utf-8")
    assert ("results.html" in benchmarks) == (ROOT / "docs" / "results.md").exists()


def test_results_md_joins_the_toctree_only_when_it_exists(tmp_path):
    conf = runpy.run_path(str(ROOT / "docs" / "conf.py"))
    app = types.SimpleNamespace(srcdir=str(tmp_path))
    source = ["Benchmarks\n==========\n"]
    conf["_link_results"](app, "benchmarks", source)
    assert "toctree" not in source[0] and "No results yet" in source[0]
    (tmp_path / "results.md").write_text("# Results\n")
    source = ["Benchmarks\n==========\n"]
    conf["_link_results"](app, "benchmarks", source)
    assert "   results\n" in source[0]
    other = ["x"]
    conf["_link_results"](app, "index", other)
    assert other == ["x"]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(path, tmp_path, monkeypatch):
    mpl = pytest.importorskip("matplotlib")
    _needs("skops")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    try:
        runpy.run_path(str(path), run_name="__example__")
    finally:
        plt.close("all")
