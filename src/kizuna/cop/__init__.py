"""The common operational picture: web server (:mod:`kizuna.cop.server`), picture store
(:mod:`kizuna.cop.picture_store`) and a static SVG map snapshot for reports."""

from __future__ import annotations

from pathlib import Path


def render_map_svg(out_dir: str | Path, nation: str, t: float, width: int = 800) -> str:
    """Inline SVG of ``nation``'s picture at the latest reporting time ≤ ``t`` in an exercise
    output directory (see :func:`kizuna.cop.snapshot.render_map_svg`)."""
    from kizuna.cop.snapshot import render_map_svg as render

    return render(out_dir, nation, t, width)


def render_warning_timeline_svg(out_dir: str | Path, nation: str, width: int = 800) -> str:
    """Inline SVG timeline of the warnings ``nation`` held (revisions, predicted impact times);
    see :func:`kizuna.cop.snapshot.render_warning_timeline_svg`."""
    from kizuna.cop.snapshot import render_warning_timeline_svg as render

    return render(out_dir, nation, width)


__all__ = ["render_map_svg", "render_warning_timeline_svg"]
