"""``deepbox.viz``: pictures of a computation graph, of training curves, and of what a network learnt."""
from __future__ import annotations

from deepbox.viz.graph import draw_graph, graph_of, to_dot
from deepbox.viz.plots import plot_confusion_matrix, plot_feature_maps, plot_filters, plot_history, plot_predictions

__all__ = ["to_dot", "draw_graph", "graph_of", "plot_history", "plot_confusion_matrix", "plot_predictions",
           "plot_filters", "plot_feature_maps"]
