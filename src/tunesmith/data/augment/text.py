"""Word-level edits of one text, after EDA (Wei & Zou, 2019) and span cut-off (Shen et al., 2020).

Each function takes the words of a text and a numpy Generator and returns new words; the
input list is never changed. `alpha` is EDA's share of the words an edit touches: n =
max(1, round(alpha * len(words))) swaps, insertions or replacements, each word deleted with
probability alpha, and a cut-off span of max(1, round(alpha * len(words))) words.
A text is never edited down to nothing: at least one word stays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

# Words in, the lexicon's synonyms out (sorted, the word itself excluded); lexicon.py gives WordNet's.
Synonyms = Callable[[str], Sequence[str]]


def edit_count(alpha: float, length: int) -> int:
    return max(1, round(alpha * length))


def random_swap(words: list[str], alpha: float, rng: np.random.Generator) -> list[str]:
    """n times, two random positions trade their words."""
    words = list(words)
    if len(words) < 2:
        return words
    for _ in range(edit_count(alpha, len(words))):
        first, second = rng.choice(len(words), size=2, replace=False)
        words[first], words[second] = words[second], words[first]
    return words


def random_deletion(words: list[str], alpha: float, rng: np.random.Generator) -> list[str]:
    """Each word dropped with probability alpha; one random word stays when all would go."""
    if len(words) < 2:
        return list(words)
    kept = [word for word, draw in zip(words, rng.random(len(words)), strict=True) if draw >= alpha]
    return kept or [words[int(rng.integers(len(words)))]]


def span_cutoff(words: list[str], alpha: float, rng: np.random.Generator) -> list[str]:
    """One contiguous span of n words removed (text-level span cut-off)."""
    if len(words) < 2:
        return list(words)
    span = min(edit_count(alpha, len(words)), len(words) - 1)
    start = int(rng.integers(len(words) - span + 1))
    return words[:start] + words[start + span :]


def synonym_replacement(words: list[str], alpha: float, rng: np.random.Generator, synonyms: Synonyms) -> list[str]:
    """n distinct words that are not stop words and have synonyms, each replaced by a random synonym.

    A synonym of several words ("look at") takes their place as several words, as in EDA.
    """
    words = list(words)
    candidates = [index for index, word in enumerate(words) if replaceable(word) and synonyms(word.lower())]
    if not candidates:
        return words
    count = min(edit_count(alpha, len(words)), len(candidates))
    for index in sorted(rng.choice(candidates, size=count, replace=False), reverse=True):
        options = synonyms(words[index].lower())
        words[index : index + 1] = options[int(rng.integers(len(options)))].split()
    return words


def random_insertion(words: list[str], alpha: float, rng: np.random.Generator, synonyms: Synonyms) -> list[str]:
    """n times, a synonym of a random word of the text (one with synonyms) put at a random position."""
    words = list(words)
    candidates = sorted({word.lower() for word in words if replaceable(word) and synonyms(word.lower())})
    if not candidates:
        return words
    for _ in range(edit_count(alpha, len(words))):
        options = synonyms(candidates[int(rng.integers(len(candidates)))])
        position = int(rng.integers(len(words) + 1))
        words[position:position] = options[int(rng.integers(len(options)))].split()
    return words


def replaceable(word: str) -> bool:
    """A word worth a synonym: alphabetic and not a stop word (scikit-learn's English list, as EDA's idea)."""
    return word.isalpha() and word.lower() not in ENGLISH_STOP_WORDS
