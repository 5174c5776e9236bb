"""Save a group made in the graph view as a supernode in the database."""

from __future__ import annotations

import streamlit as st

from app.data import supernodes


def save_group_button(group_name: str, feature_uids: list[str]) -> None:
    """A button that stores the group's catalog features as a list-defined supernode."""
    name = supernodes.safe_name(group_name)
    key = f"gv_save_{name}"
    if st.button(
        "Save to database",
        key=key,
        icon=":material/cloud_upload:",
        disabled=not feature_uids,
        help=f"Store as supernode {name!r} ({len(feature_uids)} catalog features)",
    ):
        try:
            supernodes.create_from_features(name, feature_uids, "made in the graph view")
            st.toast(f"Supernode {name!r} saved with {len(set(feature_uids))} features.")
        except ValueError as error:
            st.error(str(error))
