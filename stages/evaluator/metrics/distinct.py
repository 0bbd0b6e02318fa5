"""distinct-n (Li et al., 1510.03055): |unique n-grams| / |total n-grams| over a set of responses, n in {1, 2, 3}.

Tokenised like Self-BLEU (sacrebleu ``13a``) so the two diversity numbers see the same words. The ratio falls as
texts get longer, so compare checkpoints at similar lengths (the length statistics are reported beside it).
"""

from __future__ import annotations

from collections.abc import Sequence

from stages.evaluator.metrics.self_bleu import TOKENIZE, _bleu


def tokens(text: str, tokenize: str = TOKENIZE) -> list[str]:
    return _bleu(tokenize).tokenizer(text.rstrip()).split()


def distinct_n(texts: Sequence[str], n: int, tokenize: str = TOKENIZE) -> float | None:
    """Corpus-level distinct-n; None when the texts hold no n-gram at all."""
    if n < 1:
        raise ValueError(f"distinct-n needs n >= 1, got {n}")
    unique: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        toks = tokens(text, tokenize)
        grams = [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]
        unique.update(grams)
        total += len(grams)
    return len(unique) / total if total else None
