"""The demo world's synthetic corpus: deterministic from a seed, word-level, lowercase.

Three tasks, each a set of (prompt, answer) examples so the loss can sit on the answer alone:

- two_hop: atomic facts "dallas is in texas", "dallas , texas", "the capital of texas is austin"
  for every city and state; the composed "the capital of the state containing dallas is austin" for
  most cities of every state (train), the rest held out. Every state keeps some composed training
  sentences: a state whose capital never appears in one is never composed for its held-out cities.
- addition: "calc : a + b = s" with every number a single token; a fraction of unordered pairs held
  out (both orders), so held-out accuracy measures arithmetic rather than recall. With
  `units_facts`, also "units : a + b = u" (u the sum's units digit; the same pairs held out) and
  "digit : n = u" for every number n: without them the model adds by the sum's magnitude alone
  (sum % 10 is not linearly decodable at "=" before the last layer), with them the units digit is
  decodable from the first layer on and the sum's logits favour every number ending in it, the
  paper's two paths (units digit and magnitude) into the sum.
- entity: "the sport of michael jordan is basketball" for known athletes; invented people answer
  "unknown". Held-out unknowns are never asked about in training, so only a default "unknown" path
  (inhibited by recognising a known name, as in the paper) answers them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

TASKS = ("two_hop", "addition", "entity")
TRAIN, HELDOUT = "train", "heldout"
UNKNOWN_ANSWER = "unknown"

# "state capital : cities". Single-word names, unique across the whole table; the capital is not
# among the cities, so the composed answer is never a copy of the prompt's city.
_STATE_TABLE = """
texas austin : dallas houston plano waco laredo lubbock amarillo odessa
california sacramento : oakland fresno pasadena anaheim irvine modesto stockton berkeley
florida tallahassee : miami orlando tampa gainesville pensacola sarasota naples clearwater
illinois springfield : chicago peoria naperville evanston joliet rockford aurora elgin
ohio columbus : cleveland cincinnati toledo akron dayton youngstown canton lorain
georgia atlanta : savannah macon athens valdosta marietta dalton rome brunswick
washington olympia : seattle spokane tacoma bellevue everett yakima redmond kent
oregon salem : portland eugene bend medford corvallis beaverton hillsboro gresham
arizona phoenix : tucson mesa tempe scottsdale flagstaff yuma chandler glendale
colorado denver : boulder pueblo aspen vail greeley loveland durango littleton
massachusetts boston : cambridge worcester lowell quincy newton framingham plymouth brockton
michigan lansing : detroit flint kalamazoo saginaw dearborn livonia warren muskegon
tennessee nashville : memphis knoxville chattanooga clarksville jackson franklin bristol kingsport
pennsylvania harrisburg : philadelphia pittsburgh hershey erie scranton altoona lancaster york
virginia richmond : norfolk roanoke alexandria arlington lynchburg chesapeake hampton danville
wisconsin madison : milwaukee kenosha racine oshkosh appleton waukesha janesville sheboygan
kentucky frankfort : louisville lexington owensboro covington paducah florence georgetown ashland
alabama montgomery : birmingham mobile huntsville tuscaloosa auburn dothan decatur gadsden
indiana indianapolis : gary evansville bloomington muncie carmel fishers lafayette elkhart
kansas topeka : wichita lawrence manhattan salina olathe hutchinson emporia leavenworth
"""
STATES: dict[str, tuple[str, tuple[str, ...]]] = {
    head.split()[0]: (head.split()[1], tuple(cities.split()))
    for head, cities in (line.split(":") for line in _STATE_TABLE.strip().splitlines())
}

# (first, last, sport). Every first name is shared by two athletes of different sports, so only the
# surname tells who is known: a first-name shortcut would answer a sport for any "michael ...".
ATHLETES: tuple[tuple[str, str, str], ...] = (
    ("michael", "jordan", "basketball"), ("michael", "vick", "football"),
    ("tom", "brady", "football"), ("tom", "watson", "golf"),
    ("mike", "tyson", "boxing"), ("mike", "trout", "baseball"),
    ("larry", "bird", "basketball"), ("larry", "holmes", "boxing"),
    ("john", "mcenroe", "tennis"), ("john", "elway", "football"),
    ("jack", "nicklaus", "golf"), ("jack", "dempsey", "boxing"),
    ("joe", "dimaggio", "baseball"), ("joe", "frazier", "boxing"),
    ("wayne", "gretzky", "hockey"), ("wayne", "rooney", "soccer"),
    ("david", "beckham", "soccer"), ("david", "ortiz", "baseball"),
    ("roger", "federer", "tennis"), ("roger", "clemens", "baseball"),
    ("pete", "sampras", "tennis"), ("pete", "rose", "baseball"),
    ("bobby", "orr", "hockey"), ("bobby", "jones", "golf"),
    ("rafael", "nadal", "tennis"), ("rafael", "marquez", "soccer"),
    ("jerry", "rice", "football"), ("jerry", "west", "basketball"),
    ("patrick", "ewing", "basketball"), ("patrick", "kane", "hockey"),
    ("brett", "favre", "football"), ("brett", "hull", "hockey"),
)  # fmt: skip

# Invented surnames are built from these, so the known/unknown split never rests on spelling cues.
_SURNAME_HEADS = (
    "bat", "cor", "dan", "el", "fen", "gal", "har", "iv", "jes", "ket", "lind", "mor", "nel", "or",
    "pem", "quar", "rans", "sef", "tar", "vel",
)  # fmt: skip
_SURNAME_TAILS = (
    "kin", "vel", "more", "bridge", "wick", "ley", "rold", "sop", "ter", "qvist", "row", "tle",
    "land", "bry", "les", "ton", "rant", "lis",
)  # fmt: skip


@dataclass(frozen=True)
class CorpusConfig:
    """Everything the corpus depends on; hashed (with the code version) to cache the model."""

    seed: int = 0
    n_states: int = 20
    cities_per_state: int = 8
    two_hop_heldout_fraction: float = 0.3  # of each state's cities, never in a composed sentence
    comma_facts: bool = True  # "dallas , texas": makes the state readable through the unembedding
    max_operand: int = 99
    addition_heldout_fraction: float = 0.1  # of unordered pairs
    units_facts: bool = True  # "units : a + b = u" and "digit : n = u" (see the module docstring)
    # copies of each "digit : n" fact, so the 199 facts are drawn as often as they need to be
    digit_fact_copies: int = 20
    n_known: int = 32
    n_unknown_train: int = 64
    n_unknown_heldout: int = 32
    # "the first name of batkin is michael" for everyone: every surname is seen in training, unknown
    # ones never with a sport, so held-out unknowns need the default "unknown" path, not a lookup.
    first_name_facts: bool = True
    demo_prompts_per_task: int = 100

    def __post_init__(self) -> None:
        if not 1 <= self.n_states <= len(STATES):
            raise ValueError(f"n_states must be in 1..{len(STATES)}, got {self.n_states}")
        if not 2 <= self.cities_per_state <= 8:
            raise ValueError(f"cities_per_state must be in 2..8, got {self.cities_per_state}")
        if not 1 <= self.n_known <= len(ATHLETES):
            raise ValueError(f"n_known must be in 1..{len(ATHLETES)}, got {self.n_known}")
        for name in ("two_hop_heldout_fraction", "addition_heldout_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")


@dataclass(frozen=True)
class Example:
    """One prompt and its answer. `kind` names the sentence form within the task."""

    prompt: str
    answer: str
    task: str  # one of TASKS
    kind: str  # city_state, city_comma, capital, two_hop, addition, known, unknown
    split: str  # TRAIN or HELDOUT
    metadata: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def text(self) -> str:
        return f"{self.prompt} {self.answer}"


@dataclass(frozen=True)
class Corpus:
    config: CorpusConfig
    examples: tuple[Example, ...]

    def select(
        self, task: str | None = None, kind: str | None = None, split: str | None = None
    ) -> list[Example]:
        return [
            e
            for e in self.examples
            if (task is None or e.task == task)
            and (kind is None or e.kind == kind)
            and (split is None or e.split == split)
        ]

    def words(self) -> list[str]:
        """Every word of every example (held-out ones too: the model knows the token, not the
        fact)."""
        seen: dict[str, None] = {}
        for e in self.examples:
            seen.update(dict.fromkeys(e.text.split()))
        return list(seen)


def build_corpus(config: CorpusConfig | None = None) -> Corpus:
    config = config or CorpusConfig()
    rng = random.Random(config.seed)
    examples = [
        *_two_hop(config, rng),
        *_addition(config, rng),
        *_entity(config, rng),
    ]
    return Corpus(config, tuple(examples))


def _two_hop(config: CorpusConfig, rng: random.Random) -> list[Example]:
    out: list[Example] = []
    n_heldout = round(config.two_hop_heldout_fraction * config.cities_per_state)
    n_heldout = min(
        n_heldout, config.cities_per_state - 1
    )  # keep composed sentences for every state
    for state in list(STATES)[: config.n_states]:
        capital, all_cities = STATES[state]
        cities = list(all_cities[: config.cities_per_state])
        heldout = set(rng.sample(cities, n_heldout))
        out.append(
            Example(f"the capital of {state} is", capital, "two_hop", "capital", TRAIN,
                    {"state": state, "capital": capital})
        )  # fmt: skip
        for city in cities:
            meta = {"city": city, "state": state, "capital": capital}
            out.append(Example(f"{city} is in", state, "two_hop", "city_state", TRAIN, meta))
            if config.comma_facts:
                out.append(Example(f"{city} ,", state, "two_hop", "city_comma", TRAIN, meta))
            split = HELDOUT if city in heldout else TRAIN
            prompt = f"the capital of the state containing {city} is"
            out.append(Example(prompt, capital, "two_hop", "two_hop", split, meta))
    return out


def _addition(config: CorpusConfig, rng: random.Random) -> list[Example]:
    n = config.max_operand
    pairs = [(a, b) for a in range(n + 1) for b in range(a, n + 1)]
    heldout = set(rng.sample(pairs, round(config.addition_heldout_fraction * len(pairs))))
    out: list[Example] = []
    for a in range(n + 1):
        for b in range(n + 1):
            split = HELDOUT if (min(a, b), max(a, b)) in heldout else TRAIN
            meta = {"a": a, "b": b, "sum": a + b}
            out.append(
                Example(f"calc : {a} + {b} =", str(a + b), "addition", "addition", split, meta)
            )
    if not config.units_facts:
        return out
    out += [
        Example(f"units : {e.metadata['a']} + {e.metadata['b']} =",
                str(int(e.answer) % 10), "addition", "units", e.split, e.metadata)
        for e in list(out)
    ]  # fmt: skip
    for number in range(2 * n + 1):
        fact = Example(f"digit : {number} =", str(number % 10), "addition", "digit", TRAIN,
                       {"number": number})  # fmt: skip
        out += [fact] * config.digit_fact_copies
    return out


def _entity(config: CorpusConfig, rng: random.Random) -> list[Example]:
    known = list(ATHLETES[: config.n_known])
    first_names = sorted({first for first, _, _ in ATHLETES})
    taken = {w for athlete in ATHLETES for w in athlete} | _two_hop_words()
    surnames = [h + t for h in _SURNAME_HEADS for t in _SURNAME_TAILS if h + t not in taken]
    n_unknown = config.n_unknown_train + config.n_unknown_heldout
    if n_unknown > len(surnames):
        raise ValueError(f"at most {len(surnames)} unknown people, got {n_unknown}")
    invented = rng.sample(surnames, n_unknown)
    people = [(first, last, sport, TRAIN) for first, last, sport in known]
    for i, last in enumerate(invented):
        split = TRAIN if i < config.n_unknown_train else HELDOUT
        people.append((rng.choice(first_names), last, None, split))
    out: list[Example] = []
    for first, last, sport, split in people:
        meta = {
            "entity": f"{first} {last}",
            "first": first,
            "last": last,
            "known": sport is not None,
        }
        prompt = f"the sport of {first} {last} is"
        kind = "unknown" if sport is None else "known"
        out.append(Example(prompt, sport or UNKNOWN_ANSWER, "entity", kind, split, meta))
        if config.first_name_facts:
            prompt = f"the first name of {last} is"
            out.append(Example(prompt, first, "entity", "first_name", TRAIN, meta))
    return out


def _two_hop_words() -> set[str]:
    return {w for state, (capital, cities) in STATES.items() for w in (state, capital, *cities)}


# ---- the demo prompt corpus ----------------------------------------------------------------------

# The question kinds of each task (atomic facts are training material, not demo questions).
DEMO_KINDS: dict[str, tuple[str, ...]] = {
    "two_hop": ("two_hop",),
    "addition": ("addition",),
    "entity": ("known", "unknown"),
}


def demo_prompts(corpus: Corpus) -> list[dict]:
    """A few hundred demo prompts, balanced over (kind, split) within each task, as JSONL records.

    `text` is the prompt up to (not including) the answer; `metadata` names the intermediate
    (the state for two-hop, the operands for addition, the entity for known/unknown)."""
    rng = random.Random(corpus.config.seed + 1)
    records: list[dict] = []
    for task, kinds in DEMO_KINDS.items():
        groups = [
            corpus.select(task=task, kind=kind, split=split)
            for kind in kinds
            for split in (TRAIN, HELDOUT)
        ]
        for example in _round_robin(groups, corpus.config.demo_prompts_per_task, rng):
            records.append(_record(example))
    return records


def _round_robin(groups: Sequence[list[Example]], n: int, rng: random.Random) -> list[Example]:
    pools = [rng.sample(g, len(g)) for g in groups if g]
    picked: list[Example] = []
    while len(picked) < n and any(pools):
        for pool in pools:
            if pool and len(picked) < n:
                picked.append(pool.pop())
    return picked


def _record(e: Example) -> dict:
    meta = e.metadata
    if e.task == "two_hop":
        key = meta["city"]
    elif e.task == "addition":
        key = f"{meta['a']}+{meta['b']}"
    else:
        key = meta["entity"].replace(" ", "_")
    tags = [e.task, *([e.kind] if e.kind != e.task else []), e.split]
    return {"id": f"{e.task}:{key}", "text": e.prompt, "tags": tags, "answer": e.answer,
            "metadata": dict(meta)}  # fmt: skip


CORPUS_CONFIG_FILE = "corpus_config.json"


def save_corpus_config(config: CorpusConfig, directory: Path) -> None:
    """Stored beside a trained model, so later stages (CLT, catalogue) rebuild its corpus."""
    (directory / CORPUS_CONFIG_FILE).write_text(json.dumps(asdict(config), indent=2) + "\n")


def load_corpus(directory: Path) -> Corpus:
    """The corpus a saved demo model was trained on."""
    path = directory / CORPUS_CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"no {CORPUS_CONFIG_FILE} in {directory}: not a demo model directory"
        )
    return build_corpus(CorpusConfig(**json.loads(path.read_text())))


def write_jsonl(records: Iterable[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for r in records:
            f.write(json.dumps(r, sort_keys=True) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    with path.open() as f:
        return [json.loads(line) for line in f if line.strip()]
