"""Reading figures back as a person would see them: `legend_overlaps` finds legends drawn over
any axes of a figure."""
from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg


def legend_overlaps(fig) -> list[str]:
    """Legends of `fig` (its own and its axes') whose drawn box meets an axes' box, labels and
    title included."""
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return [f"legend over axes {i}" for legend in legends for i, ax in enumerate(fig.axes)
            if legend.get_window_extent(renderer).overlaps(ax.get_tightbbox(renderer))]
