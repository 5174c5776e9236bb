"""Supernodes for the dashboard: list, inspect, create, refresh, and collapsed graphs."""

from __future__ import annotations

import re

import pandas as pd

from app.data import run
from app.data.connection import get_handle
from queries import supernodes
from queries.supernodes import CollapsedGraph, Revision, Supernode


def list_all() -> list[Supernode]:
    return supernodes.list_supernodes(get_handle())


def get(name: str) -> Supernode | None:
    return supernodes.get_supernode(get_handle(), name)


def history(name: str) -> list[Revision]:
    return supernodes.history(get_handle(), name)


def members_table(node: Supernode) -> pd.DataFrame:
    """Members with their labels, layers and corpus counts (from the catalogue)."""
    return run.frame("features_by_uid", features=list(node.members))


def safe_name(name: str) -> str:
    """A view group's name made valid as a supernode name (letters, digits, _ . -)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]+", "-", name.strip()).strip("-")
    return cleaned if cleaned[:1].isalpha() else f"sn-{cleaned}"


def create_from_features(name: str, members: list[str], description: str = "") -> Supernode:
    node = supernodes.create_supernode(
        get_handle(), name, description=description, members=sorted(set(members))
    )
    run.clear()
    return node


def create_from_query(name: str, query_name: str, params: dict, description: str = "") -> Supernode:
    node = supernodes.create_supernode(
        get_handle(), name, description=description, query_name=query_name, params=params
    )
    run.clear()
    return node


def refresh(name: str) -> supernodes.RefreshResult:
    result = supernodes.refresh_supernode(get_handle(), name)
    run.clear()
    return result


def delete(name: str) -> None:
    supernodes.delete_supernode(get_handle(), name)
    run.clear()


def collapsed(
    graph_uid: str, names: list[str] | None = None
) -> tuple[pd.DataFrame, CollapsedGraph]:
    """(the graph's nodes with their `group`, the collapsed graph's groups and summed edges)."""
    handle = get_handle()
    nodes = supernodes.grouped_nodes(handle, graph_uid, names)
    return nodes, supernodes.collapsed_graph(handle, graph_uid, names)
