from collections import Counter

import numpy as np
import pytest

from tunesmith.data.augment import text

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "sleeping", "dog"]
# A tiny lexicon in place of WordNet: what the edits do with synonyms does not depend on which ones.
LEXICON = {"quick": ["fast", "speedy"], "lazy": ["idle"], "dog": ["hound", "domestic dog"], "fox": ["reynard"]}


def synonyms(word: str) -> list[str]:
    return LEXICON.get(word, [])


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_edit_count_is_alpha_of_the_words_rounded_and_at_least_one() -> None:
    assert text.edit_count(0.1, 10) == 1
    assert text.edit_count(0.2, 10) == 2
    assert text.edit_count(0.1, 3) == 1  # 0.3 rounds to 0, but an edit always edits
    assert text.edit_count(0.5, 7) == 4  # 3.5: Python rounds half to even


@pytest.mark.parametrize(
    "edit",
    [
        text.random_swap,
        text.random_deletion,
        text.span_cutoff,
        lambda w, a, r: text.synonym_replacement(w, a, r, synonyms),
        lambda w, a, r: text.random_insertion(w, a, r, synonyms),
    ],
)
def test_each_edit_is_reproducible_from_its_seed_and_leaves_its_input_alone(edit) -> None:
    original = list(WORDS)
    first = edit(WORDS, 0.3, rng(7))
    assert edit(WORDS, 0.3, rng(7)) == first
    assert original == WORDS
    assert {tuple(edit(WORDS, 0.3, rng(seed))) for seed in range(10)} != {tuple(first)}


def test_swap_keeps_the_words_and_moves_at_most_two_per_swap() -> None:
    for seed in range(20):
        swapped = text.random_swap(WORDS, 0.2, rng(seed))  # 2 swaps
        assert Counter(swapped) == Counter(WORDS)
        assert sum(a != b for a, b in zip(swapped, WORDS, strict=True)) <= 4
    assert text.random_swap(["alone"], 0.5, rng()) == ["alone"]


def test_deletion_drops_about_alpha_of_the_words_and_never_all() -> None:
    kept = [len(text.random_deletion(WORDS, 0.3, rng(seed))) for seed in range(400)]
    # Each word goes with probability 0.3: 7 of 10 stay on average.
    assert np.mean(kept) == pytest.approx(7.0, abs=0.2)
    assert min(len(text.random_deletion(["a", "b"], 1.0, rng(seed))) for seed in range(20)) == 1


def test_cutoff_removes_one_contiguous_span_of_alpha_of_the_words() -> None:
    for seed in range(20):
        cut = text.span_cutoff(WORDS, 0.3, rng(seed))
        assert len(cut) == 7
        start = next((i for i, (a, b) in enumerate(zip(cut, WORDS, strict=False)) if a != b), len(cut))
        assert cut == WORDS[:start] + WORDS[start + 3 :]
    # A span never takes the whole text.
    assert len(text.span_cutoff(["a", "b"], 1.0, rng())) == 1


def test_synonym_replacement_swaps_n_content_words_for_their_synonyms() -> None:
    for seed in range(20):
        replaced = text.synonym_replacement(WORDS, 0.2, rng(seed), synonyms)  # 2 replacements
        changed = [(a, b) for a, b in zip(WORDS, replaced[: len(WORDS)], strict=True) if a != b]
        if len(replaced) == len(WORDS):  # "domestic dog" replaces one word with two
            assert len(changed) == 2
            assert all(new in LEXICON[old] for old, new in changed)
    # A stop word or a word without synonyms is never touched.
    assert text.synonym_replacement(["the", "of", "zebra"], 1.0, rng(), synonyms) == ["the", "of", "zebra"]


def test_insertion_adds_n_synonyms_of_words_of_the_text() -> None:
    inserted = text.random_insertion(["quick", "brown", "cat"], 0.5, rng(3), synonyms)  # 2 insertions
    extra = Counter(inserted) - Counter(["quick", "brown", "cat"])
    assert sum(extra.values()) == 2
    assert set(extra) <= {"fast", "speedy"}
    assert text.random_insertion(["brown", "cat"], 0.5, rng(), synonyms) == ["brown", "cat"]


def test_stop_words_and_non_words_are_not_replaceable() -> None:
    assert text.replaceable("movie")
    assert not text.replaceable("the")
    assert not text.replaceable("it's")
    assert not text.replaceable("-lrb-")
