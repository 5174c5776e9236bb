"""Corpus files -> PromptRecords, streamed one line at a time.

Formats (chosen by extension, or `fmt`): `.txt` (one prompt per line; blank lines skipped), `.jsonl`
(objects with `text` and optional `id`, `tags`, `answer`; other keys become metadata) and `.csv`
(a header naming a `text` column; optional `id`, `tags` separated by `;`, `answer`; other columns
become metadata). A malformed line (bad JSON, empty text, invalid UTF-8) is recorded in
`Corpus.errors` with its line number and skipped; the good lines are still read. The prompt length
is checked by the graph computation, which knows the tokenizer.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ingest.spec import prompt_uid

FORMATS = {".txt": "text", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
RESERVED = ("id", "text", "tags", "answer")
_SURROGATES = re.compile("[\udc80-\udcff]")


@dataclass
class PromptRecord:
    """One prompt of a corpus. `uid` is the given id, else a hash of the text."""

    uid: str
    text: str
    tags: list[str] = field(default_factory=list)
    answer: str | None = None
    metadata: dict[str, object] = field(default_factory=dict)
    corpus: str = ""
    line: int = 0

    @classmethod
    def make(cls, text: str, uid: str | None = None, **kwargs: object) -> PromptRecord:
        return cls(uid=uid if uid else prompt_uid(text), text=text, **kwargs)


@dataclass
class CorpusError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class MalformedLine(ValueError):
    """A corpus line that cannot become a prompt."""


class Corpus:
    """A corpus file read lazily; iterate it for PromptRecords, then read `errors`."""

    def __init__(self, path: str | Path, fmt: str | None = None, name: str | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"corpus file not found: {self.path}")
        self.fmt = fmt or FORMATS.get(self.path.suffix.lower(), "text")
        if self.fmt not in ("text", "jsonl", "csv"):
            raise ValueError(f"unknown corpus format {self.fmt!r} (text, jsonl or csv)")
        self.name = name or self.path.stem
        self.errors: list[CorpusError] = []

    def count_lines(self) -> int:
        """Lines in the file, an upper bound of its prompts (for progress bars)."""
        with self.path.open("rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))

    def __iter__(self) -> Iterator[PromptRecord]:
        self.errors = []
        with self.path.open("rb") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
            rows = self._csv_rows(text) if self.fmt == "csv" else enumerate(text, start=1)
            for line, row in rows:
                try:
                    prompt = self._parse(row)
                except MalformedLine as e:
                    self.errors.append(CorpusError(line, str(e)))
                    continue
                if prompt is not None:
                    prompt.corpus, prompt.line = self.name, line
                    yield prompt

    def _parse(self, row: str | dict[str, str]) -> PromptRecord | None:
        if self.fmt == "text":
            _check_utf8(row)
            text = row.rstrip("\r\n")
            return PromptRecord.make(text) if text.strip() else None
        if self.fmt == "jsonl":
            _check_utf8(row)
            if not row.strip():
                return None
            try:
                obj = json.loads(row)
            except json.JSONDecodeError as e:
                raise MalformedLine(f"bad JSON: {e.msg} at column {e.colno}") from None
            if not isinstance(obj, dict):
                raise MalformedLine("bad JSON: expected an object")
            return _from_fields(obj)
        for value in row.values():
            _check_utf8(value or "")
        fields: dict[str, object] = {k: v for k, v in row.items() if k is not None}
        if isinstance(fields.get("tags"), str):
            fields["tags"] = [t.strip() for t in str(fields["tags"]).split(";") if t.strip()]
        if fields.get("answer") == "":
            fields["answer"] = None
        return _from_fields(fields)

    def _csv_rows(self, text: io.TextIOWrapper) -> Iterator[tuple[int, dict[str, str]]]:
        reader = csv.DictReader(text)
        if reader.fieldnames is None or "text" not in reader.fieldnames:
            raise ValueError(f"{self.path}: CSV header must name a 'text' column")
        for row in reader:
            yield reader.line_num, row


def _check_utf8(text: str) -> None:
    if _SURROGATES.search(text):
        raise MalformedLine("invalid UTF-8")


def _from_fields(obj: dict[str, object]) -> PromptRecord:
    text = obj.get("text")
    if not isinstance(text, str):
        raise MalformedLine("missing or non-string 'text'")
    if not text.strip():
        raise MalformedLine("empty text")
    uid = obj.get("id")
    if uid is not None and not isinstance(uid, str | int):
        raise MalformedLine("'id' must be a string or an integer")
    tags = obj.get("tags") or []
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise MalformedLine("'tags' must be a string or a list of strings")
    answer = obj.get("answer")
    metadata = {k: v for k, v in obj.items() if k not in RESERVED}
    return PromptRecord.make(
        text,
        uid=str(uid) if uid not in (None, "") else None,
        tags=tags,
        answer=None if answer is None else str(answer),
        metadata=metadata,
    )
