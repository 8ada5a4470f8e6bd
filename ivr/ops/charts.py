"""Charts as inline SVG built on the server: no script, no build step, readable without colour.

Each chart has a <title> and <desc> for screen readers, and its numbers are also in a table on the
page, so nothing is shown only as a picture.
"""

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 220
PAD_LEFT, PAD_BOTTOM, PAD_TOP = 56, 28, 12
INK, BAR, GRID = "#111", "#0b4f8a", "#8a8a8a"


def _frame(title: str, desc: str, body: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" preserveAspectRatio="xMidYMid meet" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title><desc>{escape(desc)}</desc>{body}</svg>'
    )


def bars(title: str, labels: list[str], values: list[float], fmt=str, every: int = 1) -> Markup:  # type: ignore[no-untyped-def]
    """A vertical bar chart; ``fmt`` writes a value, ``every`` thins the x labels."""
    top = max(values, default=0) or 1
    plot_w, plot_h = WIDTH - PAD_LEFT - 8, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / max(len(values), 1)
    parts = [
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP + plot_h}" x2="{WIDTH - 8}" y2="{PAD_TOP + plot_h}" stroke="{GRID}"/>',
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + 10}" text-anchor="end" font-size="12" fill="{INK}">{escape(fmt(top))}</text>',
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + plot_h}" text-anchor="end" font-size="12" fill="{INK}">{escape(fmt(0))}</text>',
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * (value / top)
        x = PAD_LEFT + i * step + step * 0.15
        parts.append(
            f'<rect x="{x:.1f}" y="{PAD_TOP + plot_h - h:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" fill="{BAR}">'
            f"<title>{escape(label)}: {escape(fmt(value))}</title></rect>"
        )
        if i % every == 0:
            parts.append(
                f'<text x="{x + step * 0.35:.1f}" y="{HEIGHT - 8}" text-anchor="middle" font-size="12" '
                f'fill="{INK}">{escape(label)}</text>'
            )
    desc = "; ".join(f"{label}: {fmt(v)}" for label, v in zip(labels, values, strict=True) if v)
    return _frame(title, desc or "nothing yet", "".join(parts))


def funnel(title: str, steps: list[tuple[str, int]]) -> Markup:
    """Horizontal bars, widest first: how many calls reached each step, and the share of all calls."""
    first = steps[0][1] if steps and steps[0][1] else 1
    row_h = (HEIGHT - 8) / max(len(steps), 1)
    label_w = 170
    plot_w = WIDTH - label_w - 110
    parts = []
    for i, (label, count) in enumerate(steps):
        y = 4 + i * row_h
        w = plot_w * count / first
        share = f"{count:,} ({count / first:.0%})" if steps[0][1] else "0"
        parts.append(
            f'<text x="{label_w - 8}" y="{y + row_h * 0.6:.1f}" text-anchor="end" font-size="13" fill="{INK}">'
            f"{escape(label)}</text>"
            f'<rect x="{label_w}" y="{y + row_h * 0.15:.1f}" width="{max(w, 1):.1f}" height="{row_h * 0.7:.1f}" fill="{BAR}"/>'
            f'<text x="{label_w + max(w, 1) + 6:.1f}" y="{y + row_h * 0.6:.1f}" font-size="13" fill="{INK}">{share}</text>'
        )
    desc = "; ".join(f"{label}: {count}" for label, count in steps)
    return _frame(title, desc, "".join(parts))


def line(title: str, labels: list[str], values: list[float | None], fmt=str, every: int = 5) -> Markup:  # type: ignore[no-untyped-def]
    """A line with dots; a missing value (no calls that day) breaks the line."""
    top = max((v for v in values if v is not None), default=0) or 1
    plot_w, plot_h = WIDTH - PAD_LEFT - 8, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / max(len(values) - 1, 1)
    parts = [
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP + plot_h}" x2="{WIDTH - 8}" y2="{PAD_TOP + plot_h}" stroke="{GRID}"/>',
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + 10}" text-anchor="end" font-size="12" fill="{INK}">{escape(fmt(top))}</text>',
    ]
    points: list[str] = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = PAD_LEFT + i * step
        if value is not None:
            y = PAD_TOP + plot_h - plot_h * value / top
            points.append(f"{x:.1f},{y:.1f}")
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{BAR}"><title>{escape(label)}: '
                         f"{escape(fmt(value))}</title></circle>")
        elif len(points) > 1:
            parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{BAR}" stroke-width="2"/>')
            points = []
        else:
            points = []
        if i % every == 0:
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle" font-size="12" fill="{INK}">'
                         f"{escape(label)}</text>")
    if len(points) > 1:
        parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{BAR}" stroke-width="2"/>')
    desc = "; ".join(f"{label}: {fmt(v)}" for label, v in zip(labels, values, strict=True) if v is not None)
    return _frame(title, desc or "no calls", "".join(parts))
