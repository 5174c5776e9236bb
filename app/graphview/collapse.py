"""Group collapsing for the graph views: computed in `queries.collapse` (one implementation)."""

from queries.collapse import collapse

__all__ = ["collapse"]
