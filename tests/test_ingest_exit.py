"""`circuitmap ingest`'s exit status tells a pipeline whether anything was skipped or failed, and
its progress bar ends at the corpus size (lines), blank and malformed lines included."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from cli.ingest import IngestExit
from cli.main import app

SMALL = ("--compute", "synthetic", "--set", "n_features=40", "--set", "n_edges=600")
TOO_LONG = " ".join(["dallas"] * 80)  # more than the synthetic computation's 64 tokens: fails


def ingest(corpus: Path, *args: str):
    return CliRunner().invoke(app, ["ingest", str(corpus), *SMALL, *args])


def bar(output: str) -> tuple[int, int]:
    done, total = re.search(r"(\d+)/(\d+)", output).groups()
    return int(done), int(total)


def test_exit_status_says_what_was_skipped_or_failed(clean_db, tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    # Blank lines and a last line without a newline: the bar still ends at the line count.
    good.write_text(
        '{"text": "dallas is in"}\n\n{"text": "the capital of texas is"}\n\n{"text": "a"}'
    )
    out = ingest(good)
    assert out.exit_code == IngestExit.OK == 0, out.output
    assert bar(out.output) == (5, 5)

    malformed = tmp_path / "malformed.jsonl"
    malformed.write_text('{"text": "dallas is in"}\n{bad json\n{"text": "nul\\u0000"}\n\n')
    out = ingest(malformed)
    assert out.exit_code == IngestExit.MALFORMED == 3, out.output
    assert bar(out.output) == (4, 4)
    assert "line 3: control character U+0000" in " ".join(out.output.split())

    failing = tmp_path / "failing.jsonl"
    failing.write_text(json.dumps({"text": TOO_LONG}) + "\n" + '{"text": "dallas is in"}\n')
    out = ingest(failing)
    assert out.exit_code == IngestExit.FAILED == 4, out.output
    assert bar(out.output) == (2, 2)
    again = ingest(failing)  # failed before, not retried: still not every prompt has a graph
    assert again.exit_code == IngestExit.FAILED, again.output

    both = tmp_path / "both.csv"
    both.write_text(f'text\n"{TOO_LONG}"\n"nul\x00"\n"the capital of texas is"\n')
    out = ingest(both)
    assert out.exit_code == IngestExit.MALFORMED_AND_FAILED == 5, out.output
    assert bar(out.output) == (4, 4)  # the header line counts too


def test_exit_statuses_are_documented() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    help_text = " ".join(CliRunner().invoke(app, ["ingest", "--help"]).output.split())
    for status in IngestExit:
        assert f"| {status.value} |" in readme, status
        assert f"{status.value} " in help_text.split("Exit status:")[1], status
