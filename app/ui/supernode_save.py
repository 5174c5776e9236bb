"""Save a group made in the graph view as a supernode in the database."""

from __future__ import annotations

import streamlit as st

from app.data import supernodes
from app.ui.text import literal


def save_group_button(group_name: str, feature_uids: list[str], message_key: str) -> None:
    """A button that stores the group's catalog features as a list-defined supernode. Its outcome
    goes to `session_state[message_key]`, shown at full width by `show_save_message` (a narrow
    button column squeezes an error into a few characters a line)."""
    name = supernodes.safe_name(group_name)
    renamed = f" (names allow letters, digits and _ . - only: saved as {name!r})"
    st.button(
        "Save to database",
        key=f"gv_save_{name}",
        icon=":material/cloud_upload:",
        disabled=not feature_uids,
        help=f"Store as supernode {name!r} ({len(feature_uids)} catalog features)"
        + (renamed if name != group_name else ""),
        on_click=_save,
        args=(group_name, name, feature_uids, message_key),
    )


def _save(group_name: str, name: str, feature_uids: list[str], message_key: str) -> None:
    if supernodes.get(name) is not None:
        st.session_state[message_key] = (
            "error",
            f"A supernode named {name!r} already exists: rename the group "
            f"{group_name!r} (Ungroup, then group again) or delete the stored one on the "
            "Supernodes page. Nothing was saved.",
        )
        return
    try:
        supernodes.create_from_features(name, feature_uids, "made in the graph view")
    except ValueError as error:
        st.session_state[message_key] = ("error", f"Group {group_name!r} not saved: {error}")
        return
    note = f" (renamed from {group_name!r}: names allow letters, digits and _ . -)"
    st.session_state[message_key] = (
        "success",
        f"Supernode {name!r} saved with {len(set(feature_uids))} features"
        + (note if name != group_name else "")
        + ".",
    )


def show_save_message(message_key: str) -> None:
    if message_key not in st.session_state:
        return
    level, text = st.session_state.pop(message_key)
    (st.error if level == "error" else st.success)(literal(text))
