"""Self-BLEU: how much a set of responses repeats itself (higher = less diverse).

Definition (methods reference §9, after Texygen): for K texts, Self-BLEU = (1/K) * sum_k BLEU-4(y_k; refs = all
other texts), uniform 4-gram weights, Chen-Cherry smoothing method 1 (sacrebleu's ``floor`` with 0.1), sacrebleu's
``13a`` tokenisation and sentence-level effective order; reported on a 0-1 scale (sacrebleu's score / 100).

Why a fast path: the direct computation calls sacrebleu once per text with the N - 1 others as references, and each
call re-extracts the n-grams of every reference, so N texts cost O(N^2) n-gram extractions (hours for the few
thousand responses of an across-prompt Self-BLEU). The multi-reference clipped count of an n-gram is the maximum
of its counts over the references; excluding the hypothesis itself, that maximum is the largest count over all
texts unless the hypothesis holds it alone, in which case it is the second largest. So one pass keeps, per n-gram,
the two largest counts and the holder of the largest; the closest reference length comes from the sorted lengths.
Each text is tokenised once and the score is assembled with sacrebleu's own ``compute_bleu``, so the values equal
the direct computation (``self_bleu_reference``) exactly.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

MAX_ORDER = 4
SMOOTH_VALUE = 0.1
TOKENIZE = "13a"


@lru_cache(maxsize=4)
def _bleu(tokenize: str = TOKENIZE) -> Any:
    from sacrebleu.metrics import BLEU

    return BLEU(smooth_method="floor", smooth_value=SMOOTH_VALUE, effective_order=True, tokenize=tokenize,
                max_ngram_order=MAX_ORDER)


def _ngrams(text: str, tokenize: str) -> tuple[Counter, int]:
    from sacrebleu.metrics.helpers import extract_all_word_ngrams

    bleu = _bleu(tokenize)
    return extract_all_word_ngrams(bleu.tokenizer(text.rstrip()), 1, MAX_ORDER)


def _closest_other_length(hyp_len: int, sorted_lens: list[int], counts: Counter) -> int:
    """The reference length sacrebleu would pick among the *other* texts: the closest, ties to the shorter."""
    if counts[hyp_len] > 1:
        return hyp_len
    pos = bisect.bisect_left(sorted_lens, hyp_len)
    below = sorted_lens[pos - 1] if pos > 0 else None
    above = sorted_lens[pos + 1] if pos + 1 < len(sorted_lens) else None  # sorted_lens[pos] is the text itself
    if below is None:
        return above  # type: ignore[return-value]
    if above is None:
        return below
    return below if hyp_len - below <= above - hyp_len else above


def self_bleu_scores(texts: Sequence[str], tokenize: str = TOKENIZE) -> list[float]:
    """BLEU-4 of each text against all the others as references, on a 0-1 scale. Needs at least two texts."""
    if len(texts) < 2:
        raise ValueError(f"Self-BLEU needs at least two texts, got {len(texts)}")
    from sacrebleu.metrics import BLEU

    extracted = [_ngrams(t, tokenize) for t in texts]
    best: dict[tuple, int] = {}
    holder: dict[tuple, int] = {}
    second: dict[tuple, int] = {}
    for i, (grams, _) in enumerate(extracted):
        for gram, count in grams.items():
            top = best.get(gram, 0)
            if count > top:
                second[gram] = top
                best[gram] = count
                holder[gram] = i
            elif count > second.get(gram, 0):
                second[gram] = count
    lengths = [n for _, n in extracted]
    sorted_lens = sorted(lengths)
    length_counts = Counter(lengths)
    scores = []
    for i, (grams, hyp_len) in enumerate(extracted):
        correct = [0] * MAX_ORDER
        total = [0] * MAX_ORDER
        for gram, count in grams.items():
            order = len(gram) - 1
            total[order] += count
            ref_count = second.get(gram, 0) if holder[gram] == i else best[gram]
            correct[order] += min(count, ref_count)
        ref_len = _closest_other_length(hyp_len, sorted_lens, length_counts)
        score = BLEU.compute_bleu(correct, total, hyp_len, ref_len, smooth_method="floor",
                                  smooth_value=SMOOTH_VALUE, effective_order=True, max_ngram_order=MAX_ORDER)
        scores.append(score.score / 100.0)
    return scores


def self_bleu(texts: Sequence[str], tokenize: str = TOKENIZE) -> float:
    """Mean Self-BLEU of one set of texts (e.g. all responses: the across-prompt Self-BLEU)."""
    scores = self_bleu_scores(texts, tokenize)
    return sum(scores) / len(scores)


def self_bleu_grouped(groups: Sequence[Sequence[str]], tokenize: str = TOKENIZE) -> float | None:
    """Within-prompt Self-BLEU: the mean over prompts of each prompt's Self-BLEU (groups with < 2 texts skipped)."""
    values = [self_bleu(g, tokenize) for g in groups if len(g) >= 2]
    return sum(values) / len(values) if values else None


def self_bleu_reference(texts: Sequence[str], tokenize: str = TOKENIZE) -> float:
    """The direct definition, one sacrebleu ``sentence_score`` per text with all others as references (O(N^2)).

    Kept as the ground truth for tests and the benchmark; never used on real runs.
    """
    if len(texts) < 2:
        raise ValueError(f"Self-BLEU needs at least two texts, got {len(texts)}")
    bleu = _bleu(tokenize)
    scores = [bleu.sentence_score(t, list(texts[:i]) + list(texts[i + 1:])).score / 100.0 for i, t in enumerate(texts)]
    return sum(scores) / len(scores)
