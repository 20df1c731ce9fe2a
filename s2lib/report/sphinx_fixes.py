"""A small Sphinx extension that keeps the HTML book free of browser console errors (``_config.yml`` loads it).

Found by the browser test (``tests/test_browser.py``) on every page of the Jupyter Book 1 site:

- ``Identifier 'THEBE_JS_URL' has already been declared``: sphinx-thebe adds its configuration ``<script>`` on
  each ``env-before-read-docs`` event, which Jupyter Book's build emits more than once, so every page declares
  the same ``const`` twice (once with file name None, once with "") and the second script throws. :func:`clean_page_context` keeps the first copy
  of every identical script (same file or body, same attributes).
- ``Got invalid theme mode: . Resetting to auto.``: the pydata theme reads the light/dark mode from the
  browser's storage and falls back to the ``default_mode`` template variable, which Jupyter Book leaves empty.
  :func:`clean_page_context` also sets it to ``"light"`` (the print-like look of the PDF) unless the book's
  ``html_context`` chooses one.
"""
from __future__ import annotations

from typing import Any

__all__ = ["setup", "clean_page_context"]


def _script_key(script: Any) -> tuple[str, tuple[tuple[str, str], ...]]:
    """File name and attributes of a script; an inline script's file name is None or "" (both mean none)."""
    attributes = getattr(script, "attributes", {}) or {}
    filename = getattr(script, "filename", script) or ""
    return str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items()))


def clean_page_context(app: Any, pagename: str, templatename: str, context: dict[str, Any],
                           doctree: Any) -> None:
    """``html-page-context`` handler: drop repeated identical ``script_files``; default the theme mode to light."""
    if not context.get("default_mode"):
        context["default_mode"] = "light"
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    unique = []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Any) -> dict[str, Any]:
    """Register the handlers (Sphinx extension entry point)."""
    app.connect("html-page-context", clean_page_context, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
