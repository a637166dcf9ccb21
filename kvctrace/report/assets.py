"""The Vega, Vega-Lite and vega-embed JavaScript the report inlines once per page.

The bundle comes from ``vl_convert.javascript_bundle`` (the vl-convert-python dependency ships
the libraries inside its binary; nothing is downloaded). Building it takes about 1.5 s, so the
result is cached on disk per vl-convert and Vega-Lite version, under ``$KVCTRACE_CACHE_DIR`` or
``~/.cache/kvctrace``; an unwritable cache only costs the rebuild.
"""
from __future__ import annotations

import os
import re
import tempfile
from functools import lru_cache
from pathlib import Path


def vega_lite_version() -> str | None:
    """The Vega-Lite ``major.minor`` that Altair writes specs for, if vl-convert bundles it."""
    import altair as alt
    import vl_convert as vlc
    wanted = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    return wanted if wanted in vlc.get_vegalite_versions() else None


def cache_dir() -> Path:
    env = os.environ.get("KVCTRACE_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base) / "kvctrace"


@lru_cache(maxsize=1)
def vega_bundle() -> str:
    """Minified JavaScript defining ``window.vegaEmbed``, ``window.vega`` and ``window.vegaLite``."""
    import vl_convert as vlc
    vl = vega_lite_version()
    version = getattr(vlc, "__version__", None) or vlc.get_vega_embed_version()
    path = cache_dir() / f"vega-bundle-vlc{version}-vl{vl or 'default'}.js"
    try:
        text = path.read_text(encoding="utf-8")
        if text.rstrip().endswith(";") and "window.vegaEmbed" in text:
            return text
    except OSError:
        pass
    text = vlc.javascript_bundle(vl_version=vl) if vl else vlc.javascript_bundle()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False,
                                         suffix=".tmp") as tmp:
            tmp.write(text)
        os.replace(tmp.name, path)  # atomic: concurrent runs never read half a file
    except OSError:
        pass
    return text


def script_safe(js: str) -> str:
    """JavaScript safe to place inside an HTML ``<script>`` element: no ``</script`` can end it
    early (``<\\/`` means ``</`` in JS strings, template literals and regexes alike)."""
    return re.sub(r"</(script)", r"<\\/\1", js, flags=re.IGNORECASE)
