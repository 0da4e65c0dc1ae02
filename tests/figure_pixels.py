"""The RGBA pixels of a figure drawn with Agg, for tests that compare two drawings."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def pixels(fig: Figure) -> np.ndarray:
    """Draw ``fig`` on an Agg canvas and return a copy of its RGBA buffer."""
    FigureCanvasAgg(fig).draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()
