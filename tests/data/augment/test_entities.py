import numpy as np
from seqeval.metrics.sequence_labeling import get_entities

from tests.conftest import ner_sentences
from tunesmith.data.augment.entities import mention_pool, replace_entities

SENTENCES = [
    (["john", "smith", "visited", "new", "york"], ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]),
    (["mary", "left", "paris", "with", "anna"], ["B-PER", "O", "B-LOC", "O", "B-PER"]),
    (["nothing", "here"], ["O", "O"]),
]


def valid_iob2(tags: list[str]) -> bool:
    return all(
        tag == "O"
        or tag[:2] == "B-"
        or (tag[:2] == "I-" and i > 0 and tags[i - 1][2:] == tag[2:] and tags[i - 1] != "O")
        for i, tag in enumerate(tags)
    )


def test_the_pool_holds_each_types_distinct_mentions_sorted() -> None:
    pool = mention_pool(SENTENCES)
    assert pool.mentions == {
        "LOC": [("new", "york"), ("paris",)],
        "PER": [("anna",), ("john", "smith"), ("mary",)],
    }


def test_a_mention_is_replaced_by_another_of_its_type_with_tags_written_again() -> None:
    pool = mention_pool(SENTENCES)
    tokens, tags = SENTENCES[0]
    # alpha 0.5 of 2 mentions: one is replaced, the other stays.
    new_tokens, new_tags = replace_entities(tokens, tags, pool, 0.5, np.random.default_rng(0))
    before, after = get_entities(tags), get_entities(new_tags)
    assert [kind for kind, _, _ in after] == ["PER", "LOC"]
    mentions = [tuple(new_tokens[start : end + 1]) for _, start, end in after]
    old = [tuple(tokens[start : end + 1]) for _, start, end in before]
    assert sum(new != was for new, was in zip(mentions, old, strict=True)) == 1
    assert all(mention in pool.mentions[kind] for mention, (kind, _, _) in zip(mentions, after, strict=True))
    assert "visited" in new_tokens


def test_tags_stay_aligned_and_valid_iob2_over_many_sentences_and_seeds() -> None:
    sentences = ner_sentences(50, seed=1)
    pool = mention_pool(sentences)
    changed = 0
    for seed, (tokens, tags) in enumerate(sentences):
        new_tokens, new_tags = replace_entities(tokens, tags, pool, 1.0, np.random.default_rng(seed))
        assert len(new_tokens) == len(new_tags)
        assert valid_iob2(new_tags)
        # The words outside mentions, and the number and types of mentions, are kept.
        assert [t for t, tag in zip(new_tokens, new_tags, strict=True) if tag == "O"] == [
            t for t, tag in zip(tokens, tags, strict=True) if tag == "O"
        ]
        assert [kind for kind, _, _ in get_entities(new_tags)] == [kind for kind, _, _ in get_entities(tags)]
        changed += new_tokens != tokens
    # alpha 1.0 replaces every mention, and each pool has other mentions: every sentence changes.
    assert changed == len(sentences)


def test_a_sentence_without_replaceable_mentions_comes_back_as_it_was() -> None:
    pool = mention_pool(SENTENCES)
    assert replace_entities(["nothing", "here"], ["O", "O"], pool, 1.0, np.random.default_rng()) == (
        ["nothing", "here"],
        ["O", "O"],
    )
    lonely = mention_pool([(["rome"], ["B-LOC"])])
    assert replace_entities(["rome"], ["B-LOC"], lonely, 1.0, np.random.default_rng()) == (["rome"], ["B-LOC"])


def test_the_other_mention_is_drawn_evenly_and_never_the_same() -> None:
    pool = mention_pool(SENTENCES)
    rng = np.random.default_rng(0)
    draws = [pool.draw_other("PER", ("john", "smith"), rng) for _ in range(2000)]
    assert set(draws) == {("anna",), ("mary",)}
    assert abs(draws.count(("anna",)) - 1000) < 100
    # A mention not in the pool may be replaced by any of it.
    assert pool.has_other("PER", ("bob",)) and len(set(pool.draw_other("PER", ("bob",), rng) for _ in range(200))) == 3
