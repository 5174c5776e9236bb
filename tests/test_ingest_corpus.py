"""Corpus files -> PromptRecords: formats, stable ids, malformed lines with their line numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.corpus import Corpus
from ingest.spec import GraphSpec, prompt_uid


def test_text_jsonl_and_csv_give_the_same_prompts(tmp_path: Path) -> None:
    (tmp_path / "c.txt").write_text("dallas is in\n\n  \nthe capital of texas is\n")
    (tmp_path / "c.jsonl").write_text(
        json.dumps({"text": "dallas is in", "tags": "one-hop", "answer": "texas", "src": 3})
        + "\n"
        + json.dumps({"id": 7, "text": "the capital of texas is", "tags": ["a", "b"]})
        + "\n"
    )
    (tmp_path / "c.csv").write_text(
        'text,tags,answer,src\n"dallas is in",one-hop,texas,3\n"the capital of texas is","a;b",,\n'
    )
    text, jsonl, csv = (list(Corpus(tmp_path / f"c.{ext}")) for ext in ("txt", "jsonl", "csv"))
    assert [p.text for p in text] == [p.text for p in jsonl] == [p.text for p in csv]
    assert [p.line for p in text] == [1, 4]
    assert text[0].uid == jsonl[0].uid == csv[0].uid == prompt_uid("dallas is in")
    assert jsonl[1].uid == "7" and jsonl[1].tags == ["a", "b"] == csv[1].tags
    assert jsonl[0].tags == ["one-hop"] and jsonl[0].answer == "texas" == csv[0].answer
    assert jsonl[0].metadata == {"src": 3} and csv[0].metadata == {"src": "3"}
    assert csv[1].answer is None and text[0].corpus == "c"


def test_malformed_lines_are_reported_with_their_numbers(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        b'{"text": "good one"}\n'
        b"{not json\n"
        b'{"text": "   "}\n'
        b'{"text": "caf\xe9 au lait"}\n'
        b'["a list"]\n'
        b'{"text": "good two", "tags": 5}\n'
        b'{"id": "x", "text": "good three"}\n'
    )
    corpus = Corpus(path)
    assert [p.text for p in corpus] == ["good one", "good three"]
    assert [(e.line, e.message.split(":")[0]) for e in corpus.errors] == [
        (2, "bad JSON at column 2"),
        (3, "empty text"),
        (4, "invalid UTF-8"),
        (5, "bad JSON"),  # a list, not an object
        (6, "'tags' must be a string or a list of strings"),
    ]
    assert corpus.count_lines() == 7


def test_control_characters_make_a_line_malformed(tmp_path: Path) -> None:
    """A NUL (or any control character but tab and newline) would reach the tokenizer as <unk>."""
    rows = [
        {"text": "the capital\u0000 of"},
        {"text": "tab\tand\nnewline and crlf\r\n are fine"},
        {"text": "an escape \u001b[31m"},
        {"text": "a lone \r return"},
        {"text": "fine", "answer": "del\u007f"},
        {"text": "fine", "tags": ["ok", "bell\u0007"]},
        {"text": "next line \u0085 (C1)"},
    ]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    corpus = Corpus(tmp_path / "c.jsonl")
    assert [p.text for p in corpus] == [rows[1]["text"]]
    assert [str(e) for e in corpus.errors] == [
        "line 1: control character U+0000 in 'text' at character 12"
        " (only tab and newline are allowed)",
        *(
            f"line {n}: control character U+{c} in {f!r} at character {i}"
            " (only tab and newline are allowed)"
            for n, c, f, i in [
                (3, "001B", "text", 11),
                (4, "000D", "text", 8),
                (5, "007F", "answer", 4),
                (6, "0007", "tags", 5),
                (7, "0085", "text", 11),
            ]
        ),
    ]
    (tmp_path / "c.txt").write_bytes(b"ok\r\nnul\x00here\nform\x0cfeed\n")
    (tmp_path / "c.csv").write_bytes(b'text\n"ok"\n"nul\x00"\n')
    text, csv = Corpus(tmp_path / "c.txt"), Corpus(tmp_path / "c.csv")
    assert [p.text for p in text] == ["ok"] and [p.text for p in csv] == ["ok"]
    assert [(e.line, str(e).split(" in ")[0]) for e in text.errors] == [
        (2, "line 2: control character U+0000"),
        (3, "line 3: control character U+000C"),
    ]
    assert [e.line for e in csv.errors] == [3]


def test_json_errors_name_the_problem_and_its_column(tmp_path: Path) -> None:
    (tmp_path / "c.jsonl").write_bytes(
        b'{"text": "a raw \x01 control"}\n'
        b'{"text": "never closed\n'
        b"{bad json\n"
        b'{"text": "x"} trailing\n'
    )
    corpus = Corpus(tmp_path / "c.jsonl")
    assert list(corpus) == []
    assert [str(e) for e in corpus.errors] == [
        "line 1: bad JSON at column 17: invalid control character",
        "line 2: bad JSON at column 10: unterminated string (no closing quote)",
        "line 3: bad JSON at column 2: expecting property name enclosed in double quotes",
        "line 4: bad JSON at column 15: extra data",
    ]


def test_bad_corpus_files_give_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="corpus file not found"):
        Corpus(tmp_path / "missing.txt")
    (tmp_path / "c.csv").write_text("prompt\nhello\n")
    with pytest.raises(ValueError, match="must name a 'text' column"):
        list(Corpus(tmp_path / "c.csv"))


def test_graph_uid_changes_with_settings_but_not_with_execution_details() -> None:
    base = GraphSpec("m", "t", {"node_threshold": 0.8, "batch_size": 256, "device": "cpu"})
    same = GraphSpec("m", "t", {"device": "cuda", "batch_size": 64, "node_threshold": 0.8})
    other = GraphSpec("m", "t", {"node_threshold": 0.7, "batch_size": 256, "device": "cpu"})
    assert base.graph_uid("p") == same.graph_uid("p") != other.graph_uid("p")
    assert GraphSpec("m", "t2", base.settings).hash != base.hash
