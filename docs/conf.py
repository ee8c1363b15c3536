"""Sphinx configuration of the skhybrid documentation.

Build with ``make docs`` (runs the examples) or, without running them,
``python -m sphinx -W -D plot_gallery=0 -b html docs docs/_build/html``.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))
os.environ.setdefault("MPLBACKEND", "Agg")

import skhybrid

project = "skhybrid"
author = "The skhybrid developers"
copyright = "2025, The skhybrid developers"
version = release = skhybrid.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# results/ holds the benchmark's data files and figures, reached from results.md.
exclude_patterns = ["_build", "results", "results/**", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "**/.ipynb_checkpoints"]
# results.md is written by the benchmark runner: its headings and links to
# files outside the site are not this site's to check.
suppress_warnings = ["myst.header", "myst.xref_missing"]

html_theme = "alabaster"
html_theme_options = {"description": "neural networks with forward-only black-box layers",
                      "fixed_sidebar": True}
html_static_path = []

autodoc_member_order = "bysource"
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

sphinx_gallery_conf = {
    "examples_dirs": os.path.join(HERE, "..", "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "show_memory": False,
    "min_reported_time": 1,
}


def _link_results(app, docname, source):
    """Put ``results.md`` in the toctree when the benchmarks have written it.

    Nothing is created in its place when it is missing: the page says so
    instead, and the build stays free of warnings either way.
    """
    if docname != "benchmarks":
        return
    if os.path.exists(os.path.join(app.srcdir, "results.md")):
        source[0] += "\n.. toctree::\n   :maxdepth: 2\n\n   results\n"
    else:
        source[0] += ("\n.. note::\n\n   No results yet: ``docs/results.md`` is written by the "
                      "benchmark run described above.\n")


def setup(app):
    import torch

    torch.set_num_threads(1)  # the examples' tiny matrices run fastest single-threaded
    app.connect("source-read", _link_results)
