"""Sphinx configuration of the documentation site (``make docs``: warnings are errors, output in build/docs)."""

from __future__ import annotations

import airflow_provider_luma

project = "airflow-provider-luma"
author = "airflow-provider-luma developers"
copyright = "airflow-provider-luma developers, Apache-2.0"  # noqa: A001 - Sphinx's setting name
release = airflow_provider_luma.__version__
version = release

extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown"}
root_doc = "index"
# Fragments are included into pages (edit/reframe share one rules table), never built on their own.
exclude_patterns = ["_fragments/**", "_build"]

myst_heading_anchors = 3
autodoc_typehints = "description"
autodoc_class_signature = "separated"
autodoc_member_order = "bysource"

html_theme = "alabaster"
html_title = f"airflow-provider-luma {release}"
html_static_path: list[str] = []
