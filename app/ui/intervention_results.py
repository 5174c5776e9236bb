"""How intervention results are ordered for reading."""

from __future__ import annotations

import pandas as pd


def by_change(result: pd.DataFrame) -> pd.DataFrame:
    """Largest change in probability first (up or down): what the intervention did, not what
    was already likely, on top."""
    order = result["change"].abs().sort_values(ascending=False, kind="stable").index
    return result.loc[order].reset_index(drop=True)
