"""Colours, labels and families of algorithms, read from :mod:`gorl.registry`.

Nothing here lists algorithm names: registered algorithms take their registry colour,
label and family; names found only in the data get palette colours and family
``baseline`` (with a warning in the caller's log).
"""
from __future__ import annotations

from typing import Iterable, Mapping

from gorl.registry import PALETTE as FALLBACK_PALETTE  # the one palette (names only in the data take its colours)


def registry_styles() -> dict[str, dict]:
    """{name: {color, label, family}} for every registered algorithm ({} if unavailable)."""
    try:
        from gorl.registry import styles
        return styles()
    except Exception:  # a broken plug-in: palette only (the caller's log says why elsewhere)
        return {}


def resolve_styles(names: Iterable[str], styles: Mapping[str, Mapping] | None = None) -> dict[str, dict]:
    """Complete style for each name; ``styles`` (e.g. passed from the workflow) wins."""
    styles = dict(styles) if styles is not None else registry_styles()
    out: dict[str, dict] = {}
    used = {s.get("color") for s in styles.values() if s.get("color")}
    free = [c for c in FALLBACK_PALETTE if c not in used] or list(FALLBACK_PALETTE)
    k = 0
    for n in names:
        s = dict(styles.get(n, {}))
        if not s.get("color"):
            s["color"] = free[k % len(free)]
            k += 1
        s.setdefault("label", n)
        s.setdefault("family", "baseline")
        out[n] = s
    return out


def order(names: Iterable[str], styles: Mapping[str, Mapping] | None = None) -> list[str]:
    """Registry order first (as given by ``styles``), then unknown names sorted."""
    names = list(dict.fromkeys(names))
    known = [n for n in (styles or {}) if n in names]
    return known + sorted(n for n in names if n not in known)
