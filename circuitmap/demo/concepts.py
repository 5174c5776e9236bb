"""Which demo-world concept a catalogue feature stands for: a state, a units digit, or a sum.

Every definition reads only the feature's catalogue card (its top activating contexts, with the
activation on each token, and its top logit effects), so it is the same for every prompt and can
be shown as a label. A context counts only for what the feature can know at its peak: the tokens
up to and including the one where its activation is largest (the model is causal).

**State.** A feature stands for state S when at least `STATE_SHARE` of its top contexts mention S
(one of S's cities, S itself or S's capital) at or before the peak, and no other state there, and
those contexts name at least `MIN_STATE_MEMBERS` different members of S (two cities, or a city and
a state-level sentence). So a feature firing on "is" after "dallas", "plano", "waco" in any
sentence form counts for Texas, a feature for the single city "dallas" does not, and a feature
firing on the shared prefix "the capital of the state containing" (whose top contexts may all
happen to be Texas sentences: they tie) does not either, since nothing before its peak names a
state. A state feature whose top logit effect is S's capital is also a "say capital" feature
(`StateConcept.says_capital`): the checks count how many of the features they use are of this
kind. Top contexts show only the strongest activations, so a feature must also not fire in more
corpus sentences than mention any state at all (n_states x the most sentences of one state): one
that also fires across the other tasks, a little more strongly after Ohio's cities, is no Ohio
feature. (A stricter bound, at most three states' worth of sentences, keeps 95 of 251 features
on the first demo CLT, and the swap then works for 10% of the prompts instead of 60-70%: much of
the state information sits in features that fire for several states, graded by state.)

**Units digit.** A feature stands for units digit u when at least `UNITS_LOGIT_SHARE` of its top
logits are numbers ending in u, or at least `UNITS_CONTEXT_SHARE` of its top contexts are additions
peaking on "=" whose sums end in u; either way spanning at least `MIN_TENS` different tens (a
feature for the one sum 85 is no units feature). An addition's sum is read from its operands
("calc : a + b = s" and "units : a + b = u" alike), not from its answer.

**Sum.** A feature stands for the sum c (give or take `SUM_TOLERANCE`) when at least `SUM_SHARE`
of its top contexts are additions peaking on "=" whose sums lie within `SUM_TOLERANCE` of c (the
middle of the narrowest range that holds that share): the "sum is about c" features of the
magnitude path. The tolerance is half a ten: a model that also tracks the units digit splits its
magnitude features by it, and one firing for the sums 77 and 87 (ends in 7, about 82) carries the
magnitude to within a ten, which the units digit then pins down (a model without the units digit
has exact-sum features, for which the tolerance makes no difference).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import cached_property

from circuitmap.demo.catalogue import Context, FeatureCard
from circuitmap.demo.corpus import STATES, CorpusConfig, build_corpus

STATE_SHARE = 0.8
MIN_STATE_MEMBERS = 2
UNITS_LOGIT_SHARE = 0.7
UNITS_CONTEXT_SHARE = 0.8
MIN_CONTEXTS = 3
MIN_TENS = 3
SUM_SHARE = 0.8
SUM_TOLERANCE = 5


@dataclass(frozen=True)
class StateConcept:
    state: str
    says_capital: bool  # its top logit effect is the state's capital


@dataclass(frozen=True)
class DemoWorld:
    """The facts of a demo corpus: each state's capital and cities."""

    states: dict[str, tuple[str, tuple[str, ...]]]
    texts_per_state: int  # the most corpus sentences that mention any one state

    @classmethod
    def of(cls, config: CorpusConfig) -> DemoWorld:
        names = list(STATES)[: config.n_states]
        states = {s: (STATES[s][0], STATES[s][1][: config.cities_per_state]) for s in names}
        members = {w: s for s, (capital, cities) in states.items() for w in (s, capital, *cities)}
        texts = {e.text for e in build_corpus(config).examples}
        counts = Counter(
            state for text in texts for state in {members[w] for w in text.split() if w in members}
        )
        return cls(states, max(counts.values(), default=0))

    def capital(self, state: str) -> str:
        return self.states[state][0]

    @cached_property
    def members(self) -> dict[str, str]:
        """The state of every city, state and capital."""
        members = {}
        for state, (capital, cities) in self.states.items():
            members.update({w: state for w in (state, capital, *cities)})
        return members


def state_concept(card: FeatureCard, world: DemoWorld) -> StateConcept | None:
    """The state `card`'s feature stands for (see the module docstring), or None."""
    contexts = card.top_contexts
    limit = len(world.states) * world.texts_per_state
    if len(contexts) < MIN_CONTEXTS or card.active_texts > limit:
        return None
    members = world.members
    mentioned: list[str | None] = []
    named: dict[str, set[str]] = {}
    for context in contexts:
        seen = [t for t in context.tokens[: _peak(context) + 1] if t in members]
        states = {members[t] for t in seen}
        state = states.pop() if len(states) == 1 else None
        mentioned.append(state)
        if state is not None:
            cities = [t for t in seen if t in world.states[state][1]]
            named.setdefault(state, set()).add(cities[0] if cities else state)
    state, count = Counter(mentioned).most_common(1)[0]
    if state is None or count < STATE_SHARE * len(contexts):
        return None
    if len(named[state]) < MIN_STATE_MEMBERS:
        return None
    capital = world.capital(state)
    return StateConcept(state, bool(card.top_logits) and card.top_logits[0] == capital)


def _peak(context: Context) -> int:
    return max(range(len(context.activations)), key=context.activations.__getitem__)


def units_digit(card: FeatureCard) -> int | None:
    """The units digit `card`'s feature stands for (see the module docstring), or None."""
    numbers = [int(t) for t in card.top_logits if t.isdigit()]
    found = _shared_units(numbers, UNITS_LOGIT_SHARE * len(card.top_logits))
    if found is not None:
        return found
    sums = _sums_at_equals(card)
    if len(sums) < MIN_CONTEXTS:
        return None
    return _shared_units(sums, UNITS_CONTEXT_SHARE * len(card.top_contexts))


def _shared_units(numbers: list[int], needed: float) -> int | None:
    """The units digit at least `needed` of `numbers` end in, if those span MIN_TENS tens."""
    if not numbers:
        return None
    digit, count = Counter(n % 10 for n in numbers).most_common(1)[0]
    tens = {n // 10 for n in numbers if n % 10 == digit}
    return digit if count >= needed and len(tens) >= MIN_TENS else None


def sum_value(card: FeatureCard) -> int | None:
    """The sum `card`'s feature stands for (see the module docstring), or None."""
    sums = sorted(_sums_at_equals(card))
    needed = max(MIN_CONTEXTS, math.ceil(SUM_SHARE * len(card.top_contexts)))
    if len(sums) < needed:
        return None
    # the narrowest range holding `needed` of the sums
    windows = [(sums[i], sums[i + needed - 1]) for i in range(len(sums) - needed + 1)]
    low, high = min(windows, key=lambda w: w[1] - w[0])
    return (low + high) // 2 if high - low <= 2 * SUM_TOLERANCE else None


def _sums_at_equals(card: FeatureCard) -> list[int]:
    """The sums a + b of the top contexts that are additions ("calc : a + b = s" or
    "units : a + b = u") on whose "=" the feature peaks."""
    sums = []
    for context in card.top_contexts:
        tokens = context.tokens
        if tokens[_peak(context)] != "=" or "+" not in tokens:
            continue
        plus = tokens.index("+")
        a, b = tokens[plus - 1], tokens[plus + 1 : plus + 2]
        if a.isdigit() and b and b[0].isdigit():
            sums.append(int(a) + int(b[0]))
    return sums


def concept_label(card: FeatureCard, world: DemoWorld) -> str:
    """A short concept tag for a card ("state texas", "say austin (texas)", "units 5"), or ""."""
    state = state_concept(card, world)
    if state is not None:
        return (
            f"say {world.capital(state.state)} ({state.state})"
            if state.says_capital
            else (f"state {state.state}")
        )
    digit = units_digit(card)
    if digit is not None:
        return f"sum ends in {digit}"
    value = sum_value(card)
    return f"sum ≈ {value}" if value is not None else ""
