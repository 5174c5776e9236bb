"""The demo world: a synthetic corpus, a word-level tokenizer and a small Llama model trained here.

No hub model is reachable, so the demo (and the tests that check the pipeline finds real mechanisms)
use a model whose circuits we designed: two-hop facts (city -> state -> capital), addition with
numbers as single tokens, and known vs unknown entities. Tensors only: no storage or UI imports.
"""
