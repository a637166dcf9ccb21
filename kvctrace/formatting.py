"""One way to print a value, shared by the console (``kvctrace analyze``), the notebook
renderings (``_repr_html_``) and the HTML report, so a figure reads the same in all three.

``format_value(value)`` picks the form from the value:

* missing (``None``, NaN, inf) -> ``missing`` (default ``"n/a"``; report tables pass ``""``);
* ``bool`` -> ``yes`` / ``no``; integers -> thousands separators (``12,031``);
* floats: four significant digits but at most four decimals and none from 1,000 up, without
  trailing zeros (``13,619``, ``354.6``, ``26.87``, ``0.5068``, ``0.05``, ``0.0961``, ``79``);
  below 0.001 three significant digits (``0.000123``);
* lists -> ``[N items]`` (their values live in summary.json).

The options are the units the report's headline figures use: ``digits`` fixes the decimals
(``0.3664`` with ``digits=4``), ``unit="%"`` prints a share as a percentage (one decimal unless
``digits``), ``unit="s"`` prints seconds with minutes or hours beside large values.
"""
from __future__ import annotations

import math

import numpy as np

MISSING = "n/a"
UNITS = (None, "%", "s")


def format_value(value, *, digits: int | None = None, unit: str | None = None,
                 missing: str = MISSING) -> str:
    """``value`` as display text (see the module docstring for the rules and options)."""
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; one of {UNITS}")
    if value is None:
        return missing
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return f"[{len(value)} items]"
    if not isinstance(value, (int, float, np.integer, np.floating)):
        return str(value)
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return missing
    if unit == "%":
        return f"{100 * float(value):,.{1 if digits is None else digits}f}%"
    if unit == "s":
        return _seconds(float(value))
    if digits is not None:
        return f"{float(value):,.{digits}f}"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return _float(float(value))


def _float(v: float) -> str:
    magnitude = abs(v)
    if v == 0:
        return "0"
    if magnitude < 1e-3:
        return f"{v:.3g}"
    # four significant digits, at most four decimals, none from 1,000 up
    decimals = min(4, max(0, 3 - math.floor(math.log10(magnitude))))
    text = f"{v:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if decimals else text


def _seconds(v: float) -> str:
    if v >= 3600:
        return f"{v / 3600:.2f} h ({v:,.0f} s)"
    if v >= 60:
        return f"{v / 60:.1f} min ({v:,.0f} s)"
    return f"{v:.3g} s"


_BYTE_UNITS = (("B", 1.0), ("kB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("PB", 1e15))


def format_bytes(n: float) -> str:
    """A size in bytes as text: three significant digits in the largest SI unit that keeps the
    rounded figure below 1,000 (bytes are whole numbers; above 999 PB, PB with separators)."""
    n = float(n)
    if not math.isfinite(n):
        return MISSING
    for unit, size in reversed(_BYTE_UNITS):
        if abs(n) >= size or unit == "B":
            break
    text = f"{round(n):.0f}" if unit == "B" else f"{n / size:.3g}"
    if abs(float(text)) >= 1000 and unit != "PB":   # 999.9 GB rounds to 1e+03 GB: one unit up
        unit, size = _BYTE_UNITS[[u for u, _ in _BYTE_UNITS].index(unit) + 1]
        text = f"{n / size:.3g}"
    if "e" in text:
        text = f"{n / size:,.0f}"
    return f"{text} {unit}"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 root``, ``2 roots``, ``12,031 requests`` (``nouns`` for irregular plurals)."""
    return f"{format_value(count)} {noun if count == 1 else (nouns or noun + 's')}"


def format_window(seconds: float) -> str:
    """A window length for prose, three significant digits: ``30-second``, ``177-second``,
    ``1.5-second``."""
    return f"{float(f'{float(seconds):.3g}'):,g}-second"
