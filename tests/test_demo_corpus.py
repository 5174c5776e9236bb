"""The demo corpus: deterministic, held-out items truly unseen, every word a single token."""

from __future__ import annotations

from collections import Counter

import pytest
from transformers import AutoTokenizer

from circuitmap.demo.corpus import (
    HELDOUT,
    STATES,
    TRAIN,
    CorpusConfig,
    build_corpus,
    demo_prompts,
    read_jsonl,
    write_jsonl,
)
from circuitmap.demo.tokenizer import BOS, build_tokenizer


@pytest.fixture(scope="module")
def corpus():
    return build_corpus(CorpusConfig())


def test_same_seed_same_corpus_other_seed_other_split(corpus):
    assert build_corpus(CorpusConfig()).examples == corpus.examples
    other = build_corpus(CorpusConfig(seed=1))
    assert {e.prompt for e in other.select(split=HELDOUT)} != {
        e.prompt for e in corpus.select(split=HELDOUT)
    }


def test_two_hop_heldout_cities_are_never_composed_in_training(corpus):
    composed_train = corpus.select(kind="two_hop", split=TRAIN)
    heldout = corpus.select(kind="two_hop", split=HELDOUT)
    train_cities = {e.metadata["city"] for e in composed_train}
    heldout_cities = {e.metadata["city"] for e in heldout}
    assert len(heldout) == 40 and len(composed_train) == 120
    assert not train_cities & heldout_cities
    # every state keeps composed training sentences, or its held-out cities could not be answered
    assert {e.metadata["state"] for e in composed_train} == set(STATES)
    # but every held-out city has its atomic facts, and every state its capital
    atomic_cities = {e.metadata["city"] for e in corpus.select(kind="city_state", split=TRAIN)}
    assert heldout_cities <= atomic_cities
    assert len(corpus.select(kind="capital", split=TRAIN)) == len(STATES)
    assert all(e.answer == STATES[e.metadata["state"]][0] for e in heldout)


def test_addition_holds_out_unordered_pairs(corpus):
    train = corpus.select(kind="addition", split=TRAIN)
    heldout = corpus.select(kind="addition", split=HELDOUT)
    assert len(train) + len(heldout) == 100 * 100
    pair = lambda e: frozenset((e.metadata["a"], e.metadata["b"]))  # noqa: E731
    assert not {pair(e) for e in train} & {pair(e) for e in heldout}
    assert 0.08 < len(heldout) / 10_000 < 0.12
    assert all(int(e.answer) == e.metadata["a"] + e.metadata["b"] for e in heldout)
    assert heldout[0].text.startswith("calc : ")


def test_units_questions_hold_out_the_same_pairs_and_digit_facts_cover_every_number(corpus):
    sums = {e.prompt.split(" : ")[1]: e.split for e in corpus.select(kind="addition")}
    units = corpus.select(kind="units")
    assert len(units) == 100 * 100
    assert all(sums[e.prompt.split(" : ")[1]] == e.split for e in units)
    assert all(int(e.answer) == (e.metadata["a"] + e.metadata["b"]) % 10 for e in units)
    digits = corpus.select(kind="digit")
    assert {e.prompt for e in digits} == {f"digit : {n} =" for n in range(199)}
    assert all(e.split == TRAIN and e.answer == e.prompt.split()[2][-1] for e in digits)
    plain = build_corpus(CorpusConfig(units_facts=False))
    assert {e.kind for e in plain.select(task="addition")} == {"addition"}


def test_heldout_unknown_people_are_never_asked_about_in_training(corpus):
    sport_train = corpus.select(task="entity", split=TRAIN)
    asked = {e.metadata["last"] for e in sport_train if e.kind in ("known", "unknown")}
    named = {e.metadata["last"] for e in sport_train if e.kind == "first_name"}
    heldout = corpus.select(kind="unknown", split=HELDOUT)
    assert len(heldout) == 32 and all(e.answer == "unknown" for e in heldout)
    surnames = {e.metadata["last"] for e in heldout}
    assert not surnames & asked  # never with a fact...
    assert surnames <= named  # ...but seen, so their tokens are trained
    known = corpus.select(kind="known")
    assert known and all(e.split == TRAIN and e.answer != "unknown" for e in known)
    # first names never give the answer away: each is shared by athletes of different sports
    sports_by_first = Counter(e.metadata["first"] for e in known)
    assert min(sports_by_first.values()) >= 2


def test_demo_prompts_cover_the_tasks_and_round_trip(corpus, tmp_path):
    records = demo_prompts(corpus)
    assert 250 <= len(records) <= 400
    assert len({r["id"] for r in records}) == len(records)
    tags = Counter(tag for r in records for tag in r["tags"])
    assert tags["two_hop"] and tags["addition"] and tags["entity"] and tags["known"]
    assert tags[HELDOUT] >= 100 and tags[TRAIN] >= 100
    by_prompt = {(e.prompt, e.answer) for e in corpus.examples}
    assert all((r["text"], r["answer"]) in by_prompt for r in records)
    two_hop = next(r for r in records if "two_hop" in r["tags"])
    assert set(two_hop["metadata"]) >= {"city", "state", "capital"}
    write_jsonl(records, tmp_path / "p.jsonl")
    assert read_jsonl(tmp_path / "p.jsonl") == records
    assert demo_prompts(build_corpus(CorpusConfig())) == records


def test_tokenizer_round_trip_through_auto_tokenizer(corpus, tmp_path):
    build_tokenizer(corpus.words(), max_number=198).save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    text = "the capital of the state containing dallas is austin"
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and tok.convert_ids_to_tokens(ids[0]) == BOS
    assert len(ids) == 1 + len(text.split())  # one token per word
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok.unk_token_id not in tok(" ".join(corpus.words()))["input_ids"]
    numbers = tok("0 1 198", add_special_tokens=False)["input_ids"]
    assert numbers[1] == numbers[0] + 1 and numbers[2] == numbers[0] + 198
    assert (
        tok("calc : 36+59 =", add_special_tokens=False)["input_ids"]
        == tok("calc : 36 + 59 =", add_special_tokens=False)["input_ids"]
    )


@pytest.mark.parametrize(
    "bad", [{"n_states": 0}, {"cities_per_state": 9}, {"addition_heldout_fraction": 1.0}]
)
def test_bad_config_is_a_clear_error(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        CorpusConfig(**bad)
