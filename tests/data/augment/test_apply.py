import datasets
import pytest

from tunesmith.data.augment.apply import Plan, augment_entities, augment_texts

LEXICON = {"film": ["movie"], "great": ["outstanding"], "dull": ["boring"]}


def synonyms(word: str) -> list[str]:
    return LEXICON.get(word, [])


def texts(pairs: bool = False) -> datasets.Dataset:
    columns = {
        "text": ["a great film with a fine cast", "dull film", "ok"],
        "labels": [1, 0, 1],
        "line": [2, 3, 4],
    }
    if pairs:
        columns["text_pair"] = ["the cast was great and the plot fine", "a dull plot", "fine"]
    return datasets.Dataset.from_dict(columns)


def test_two_runs_with_one_seed_give_the_same_rows_and_another_seed_others() -> None:
    plan = Plan(["swap", "delete", "insert", "synonym", "cutoff"], 0.3, 3, seed=11)
    first = augment_texts(texts(), plan, synonyms)
    assert augment_texts(texts(), plan, synonyms).to_dict() == first.to_dict()
    other = augment_texts(texts(), Plan(plan.operations, 0.3, 3, seed=12), synonyms)
    assert other["text"] != first["text"]


def test_new_rows_follow_the_split_with_their_rows_labels_and_lines() -> None:
    train = texts()
    augmented = augment_texts(train, Plan(["synonym"], 0.5, 2, seed=0), synonyms)
    assert augmented.features == train.features
    assert augmented[:3] == train[:]
    # "ok" has no synonym: its copies are the same as it, so they are left out.
    assert augmented["line"][3:] == [2, 2, 3, 3]
    assert augmented["labels"][3:] == [1, 1, 0, 0]
    # alpha 0.5 of two words: one replacement each.
    assert set(augmented["text"][5:]) <= {"boring film", "dull movie"}
    assert all("movie" in row or "outstanding" in row for row in augmented["text"][3:5])


def test_pairs_edit_both_texts_or_only_the_first() -> None:
    train = texts(pairs=True)
    both = augment_texts(train, Plan(["cutoff"], 0.3, 1, seed=0), synonyms)
    assert all(new != old for new, old in zip(both["text_pair"][3:], train["text_pair"], strict=False))
    first = augment_texts(train, Plan(["cutoff"], 0.3, 1, seed=0, pair_texts="first"), synonyms)
    assert first["text_pair"][3:] == train["text_pair"][: len(first) - 3]
    assert first["text"][3:] != train["text"][: len(first) - 3]


def test_lexical_operations_without_synonyms_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="needs synonyms"):
        augment_texts(texts(), Plan(["synonym"], 0.1, 1, seed=0))


def test_ner_rows_get_other_mentions_with_tag_ids_to_match() -> None:
    names = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    train = datasets.Dataset.from_dict(
        {
            "text": [["john", "smith", "visited", "rome"], ["mary", "saw", "new", "york"]],
            "labels": [[3, 4, 0, 1], [3, 0, 1, 2]],
            "line": [1, 6],
        }
    )
    augmented = augment_entities(train, Plan(["entity"], 1.0, 1, seed=0), names)
    assert len(augmented) == 4
    # alpha 1.0: every mention replaced by the other one of its type in the training set.
    assert augmented["text"][2:] == [["mary", "visited", "new", "york"], ["john", "smith", "saw", "rome"]]
    assert augmented["labels"][2:] == [[3, 0, 1, 2], [3, 4, 0, 1]]
    assert augmented["line"][2:] == [1, 6]
