from __future__ import annotations

import pytest

from tunesmith.tasks.tagging import SCHEMES, detect_scheme, entity_spans, repair_iob2, split_tag, to_iob2


def test_schemes() -> None:
    assert SCHEMES == ("iob1", "iob2", "bioes")


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("O", ("O", "")),
        ("B-PER", ("B", "PER")),
        ("I-LOC", ("I", "LOC")),
        ("E-ORG", ("E", "ORG")),
        ("S-MISC", ("S", "MISC")),
        ("L-ORG", ("E", "ORG")),
        ("U-MISC", ("S", "MISC")),
        ("B-PER.NAM", ("B", "PER.NAM")),
        ("B-SUB-TYPE", ("B", "SUB-TYPE")),
    ],
)
def test_split_tag(tag: str, expected: tuple[str, str]) -> None:
    assert split_tag(tag) == expected


@pytest.mark.parametrize("tag", ["X-PER", "PER", "B-", "", "o", "b-PER", "-PER", "B"])
def test_split_tag_rejects(tag: str) -> None:
    with pytest.raises(ValueError, match="unknown tag"):
        split_tag(tag)


def test_detect_iob2() -> None:
    assert detect_scheme([["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"]]) == "iob2"


def test_detect_iob2_with_a_few_invalid_i_tags() -> None:
    # Weibo NER: IOB2 with stray I- after O; B- starting entities decides it.
    assert detect_scheme([["O", "I-PER", "O", "B-LOC", "I-LOC"]]) == "iob2"


def test_detect_iob1() -> None:
    assert detect_scheme([["I-PER", "I-PER", "B-PER", "O", "I-LOC"], ["O", "I-ORG"]]) == "iob1"


def test_detect_iob1_without_any_b() -> None:
    assert detect_scheme([["I-PER", "O"], ["O", "I-LOC", "I-LOC"]]) == "iob1"


def test_detect_b_after_other_type_is_iob2() -> None:
    assert detect_scheme([["I-PER", "B-LOC"]]) == "iob2"


def test_detect_bioes_and_bilou() -> None:
    assert detect_scheme([["B-PER", "E-PER", "O"]]) == "bioes"
    assert detect_scheme([["O"], ["S-LOC"]]) == "bioes"
    assert detect_scheme([["B-PER", "L-PER", "U-LOC"]]) == "bioes"


def test_detect_no_entities_is_iob2() -> None:
    assert detect_scheme([["O", "O"], []]) == "iob2"


def test_detect_reads_a_generator_once() -> None:
    assert detect_scheme(tags for tags in [["I-PER"], ["O", "I-LOC"]]) == "iob1"


def test_detect_rejects_unknown_tags() -> None:
    with pytest.raises(ValueError, match="unknown tag 'PER'"):
        detect_scheme([["O", "PER"]])


def test_iob1_to_iob2() -> None:
    tags = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG", "O"]
    assert to_iob2(tags, "iob1") == ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG", "O"]


def test_iob2_unchanged() -> None:
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]
    assert to_iob2(tags, "iob2") == tags


def test_iob2_repairs_invalid_i() -> None:
    tags = ["I-PER", "O", "I-LOC", "B-ORG", "I-PER", "I-PER"]
    assert to_iob2(tags, "iob2") == ["B-PER", "O", "B-LOC", "B-ORG", "B-PER", "I-PER"]


def test_bioes_to_iob2() -> None:
    tags = ["S-PER", "B-LOC", "I-LOC", "E-LOC", "O", "B-ORG", "E-ORG", "S-ORG"]
    assert to_iob2(tags, "bioes") == ["B-PER", "B-LOC", "I-LOC", "I-LOC", "O", "B-ORG", "I-ORG", "B-ORG"]


def test_bilou_to_iob2() -> None:
    assert to_iob2(["U-PER", "B-LOC", "L-LOC"], "bioes") == ["B-PER", "B-LOC", "I-LOC"]


def test_bioes_repairs_tags_that_continue_nothing() -> None:
    # E- after O, I- after a closed entity, E- of another type: each starts an entity.
    tags = ["E-PER", "O", "S-LOC", "I-LOC", "B-ORG", "E-PER", "B-PER", "E-PER", "E-PER"]
    assert to_iob2(tags, "bioes") == ["B-PER", "O", "B-LOC", "B-LOC", "B-ORG", "B-PER", "B-PER", "I-PER", "B-PER"]


def test_types_with_dots_and_hyphens_survive() -> None:
    assert to_iob2(["I-PER.NAM", "I-SUB-TYPE"], "iob1") == ["B-PER.NAM", "B-SUB-TYPE"]


def test_empty_sentence() -> None:
    assert to_iob2([], "iob1") == []
    assert entity_spans([]) == []


@pytest.mark.parametrize("scheme", ["iob1", "iob2"])
@pytest.mark.parametrize("tag", ["E-PER", "S-PER", "L-PER", "U-PER"])
def test_bioes_tags_rejected_in_iob(scheme: str, tag: str) -> None:
    with pytest.raises(ValueError, match=f"{tag} is a BIOES tag, not valid in {scheme.upper()}"):
        to_iob2(["O", tag], scheme)


def test_to_iob2_rejects_unknown_tags_and_schemes() -> None:
    with pytest.raises(ValueError, match="unknown tag 'X-PER'"):
        to_iob2(["X-PER"], "iob2")
    with pytest.raises(ValueError, match="unknown tag scheme 'bio'"):
        to_iob2(["O"], "bio")


def test_repair_iob2() -> None:
    assert repair_iob2(["O", "I-PER", "I-PER", "I-LOC"]) == ["O", "B-PER", "I-PER", "B-LOC"]


def test_entity_spans() -> None:
    assert entity_spans(["B-PER", "I-PER", "O", "I-LOC"]) == [("PER", 0, 2), ("LOC", 3, 4)]


def test_entity_spans_adjacent_entities() -> None:
    assert entity_spans(["B-PER", "B-PER"]) == [("PER", 0, 1), ("PER", 1, 2)]
    assert entity_spans(["B-PER", "I-LOC", "I-LOC"]) == [("PER", 0, 1), ("LOC", 1, 3)]


def test_entity_spans_at_the_end_and_none() -> None:
    assert entity_spans(["O", "B-ORG.NOM", "I-ORG.NOM"]) == [("ORG.NOM", 1, 3)]
    assert entity_spans(["O", "O"]) == []


def test_entity_spans_rejects_bioes() -> None:
    with pytest.raises(ValueError, match="BIOES"):
        entity_spans(["S-PER"])
