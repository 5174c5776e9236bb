"""Turn the failures a user can cause or meet (Neo4j down, bad input, a failed query) into one clear
message on the page instead of a traceback."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st
from neo4j.exceptions import AuthError, ServiceUnavailable, SessionExpired

from app.data.connection import DatabaseUnavailableError, neo4j_uri
from queries.runner import QueryFailedError
from queries.safety import UnsafeQueryError

EMPTY_DB_HINT = (
    "The database holds no graphs yet. Ingest a corpus (`circuitmap ingest ...`) or load the demo "
    "(`make demo`), then reload this page."
)


def run_page(render: Callable[[], None]) -> None:
    """Run a page body; expected failures become an error box and stop the page."""
    try:
        render()
    except (DatabaseUnavailableError, ServiceUnavailable, SessionExpired) as error:
        st.error(
            f"Neo4j is not reachable at {neo4j_uri()}: start it with `circuitmap db start` "
            f"(or set NEO4J_URI). Details: {_one_line(error)}",
            icon=":material/cloud_off:",
        )
    except AuthError:
        st.error(
            f"Neo4j at {neo4j_uri()} refused the credentials: check NEO4J_USER / NEO4J_PASSWORD."
        )
    except (QueryFailedError, UnsafeQueryError, LookupError, ValueError) as error:
        st.error(_one_line(error), icon=":material/error:")


def _one_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
