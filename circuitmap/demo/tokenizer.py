"""A word-level tokenizer for the demo model, in Hugging Face format.

One token per word keeps attribution graphs readable (a node per city, per number). Numbers 0..198
get ids in numeric order, so `token_id - first_number_id` is the number. BOS is added by the
post-processor, which is what circuit-tracer and `AutoTokenizer` users expect of a causal LM.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)


def build_tokenizer(words: Iterable[str], max_number: int) -> PreTrainedTokenizerFast:
    """Vocabulary: special tokens, then "0".."max_number", then the other words sorted."""
    numbers = [str(i) for i in range(max_number + 1)]
    others = sorted(set(words) - set(numbers) - set(SPECIAL_TOKENS))
    vocab = {tok: i for i, tok in enumerate([*SPECIAL_TOKENS, *numbers, *others])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A",
        pair=f"{BOS} $A $B:1",
        special_tokens=[(BOS, vocab[BOS])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        pad_token=PAD,
        clean_up_tokenization_spaces=False,
        model_max_length=64,
    )
