"""Corpus files -> PromptRecords, streamed one line at a time.

Formats (chosen by extension, or `fmt`): `.txt` (one prompt per line; blank lines skipped), `.jsonl`
(objects with `text` and optional `id`, `tags`, `answer`; other keys become metadata) and `.csv`
(a header naming a `text` column; optional `id`, `tags` separated by `;`, `answer`; other columns
become metadata). A malformed line (bad JSON, empty text, invalid UTF-8, a control character other
than tab and newline in a prompt) is recorded in `Corpus.errors` with its line number and skipped;
the good lines are still read. The prompt length
is checked by the graph computation, which knows the tokenizer.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ingest.spec import prompt_uid

FORMATS = {".txt": "text", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
RESERVED = ("id", "text", "tags", "answer")
_SURROGATES = re.compile("[\udc80-\udcff]")
# C0 and C1 control characters and DEL, except tab and newline (CR only as part of CRLF): a NUL or
# an escape in a prompt would reach the tokenizer as an unknown token.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|\r(?!\n)")


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
        self.lines_read = 0  # by the last iteration

    def count_lines(self) -> int:
        """Lines in the file (a last one without a newline too), an upper bound of its prompts."""
        lines, last = 0, b"\n"
        with self.path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                lines, last = lines + chunk.count(b"\n"), chunk[-1:]
        return lines + (last != b"\n")

    def with_line_progress(self, advance: Callable[[int], None]) -> Iterator[PromptRecord]:
        """The prompts, telling `advance(n)` of the n lines that hold none (blank, malformed, a CSV
        header) before each prompt and after the last: a progress bar that counts one step per
        prompt and these steps ends at `count_lines()`."""
        read = 0
        for prompt in self:
            if prompt.line - 1 > read:
                advance(prompt.line - 1 - read)
            read = prompt.line
            yield prompt
        if self.lines_read > read:
            advance(self.lines_read - read)

    def __iter__(self) -> Iterator[PromptRecord]:
        self.errors, self.lines_read = [], 0
        with self.path.open("rb") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
            rows = self._csv_rows(text) if self.fmt == "csv" else enumerate(text, start=1)
            for line, row in rows:
                self.lines_read = line
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
            if not text.strip():
                return None
            _check_controls("text", text)
            return PromptRecord.make(text)
        if self.fmt == "jsonl":
            _check_utf8(row)
            if not row.strip():
                return None
            try:
                # Without its line ending: a string left open then reads "unterminated string",
                # not "invalid control character" (the newline).
                obj = json.loads(row.rstrip("\r\n"))
            except json.JSONDecodeError as e:
                raise MalformedLine(_json_error(e)) from None
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


def _json_error(error: json.JSONDecodeError) -> str:
    """`json`'s message reworded: "Invalid control character at" -> "bad JSON at column 41:
    invalid control character"."""
    what = error.msg.removesuffix(" at")
    if what.startswith("Unterminated string"):
        what = "unterminated string (no closing quote)"
    return f"bad JSON at column {error.colno}: {what[:1].lower()}{what[1:]}"


def _check_controls(name: str, value: str) -> None:
    found = _CONTROL.search(value)
    if found:
        char = found.group()
        raise MalformedLine(
            f"control character U+{ord(char):04X} in {name!r} at character {found.start() + 1}"
            " (only tab and newline are allowed)"
        )


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
    for name, value in [
        ("text", text),
        ("id", uid),
        ("answer", answer),
        *(("tags", t) for t in tags),
    ]:
        if isinstance(value, str):
            _check_controls(name, value)
    metadata = {k: v for k, v in obj.items() if k not in RESERVED}
    return PromptRecord.make(
        text,
        uid=str(uid) if uid not in (None, "") else None,
        tags=tags,
        answer=None if answer is None else str(answer),
        metadata=metadata,
    )
