"""Tag schemes for named-entity recognition: reading IOB1, IOB2 and BIOES (BILOU) tags, converting to IOB2.

A tag is "O" or "<prefix>-<type>" with prefix B, I, E or S (L and U are read as E and S).
IOB2 is the one scheme the models see; every input scheme is converted to it.
Pure Python, so data files can be checked without loading torch.
"""

from __future__ import annotations

from collections.abc import Iterable

SCHEMES = ("iob1", "iob2", "bioes")

# BILOU's L(ast) and U(nit) are BIOES's E(nd) and S(ingle) under other names.
_PREFIXES = {"B": "B", "I": "I", "E": "E", "S": "S", "L": "E", "U": "S"}


def split_tag(tag: str) -> tuple[str, str]:
    """(prefix, type) of a tag, ("O", "") for "O"; L- and U- come back as "E" and "S".

    The type is everything after the first hyphen, so "B-SUB-TYPE" has type "SUB-TYPE".
    """
    if tag == "O":
        return "O", ""
    prefix, hyphen, entity_type = tag.partition("-")
    if not hyphen or not entity_type or prefix not in _PREFIXES:
        raise ValueError(f"unknown tag {tag!r}: expected O, or B-, I-, E- or S- followed by a type, e.g. B-PER")
    return _PREFIXES[prefix], entity_type


def detect_scheme(sequences: Iterable[list[str]]) -> str:
    """Guess the tag scheme of a data set: "bioes", "iob1" or "iob2".

    - "bioes" if any E-, S-, L- or U- tag occurs.
    - "iob1" if no B- tag ever starts an entity (B- only directly after an I- or B- of the same
      type, where IOB1 needs it to split two adjacent entities) and some I- tag does start one
      (first in the sentence, after O, or after another type). So data with I- but no B- is IOB1.
    - "iob2" otherwise, including data with no entities at all.
    Unknown tags raise ValueError.
    """
    b_starts = i_starts = False
    for tags in sequences:
        previous_type = ""
        for tag in tags:
            prefix, entity_type = split_tag(tag)
            if prefix in ("E", "S"):
                return "bioes"
            starts = entity_type != previous_type
            b_starts = b_starts or (prefix == "B" and starts)
            i_starts = i_starts or (prefix == "I" and starts)
            previous_type = entity_type
    return "iob1" if i_starts and not b_starts else "iob2"


def to_iob2(tags: list[str], scheme: str) -> list[str]:
    """One sentence's tags converted to IOB2.

    An I- (or E-) tag that does not continue an entity of its type (first token, after O,
    after another type, or after an entity that E-/S- closed) starts one and becomes B-:
    that is what IOB1 means, and for IOB2 and BIOES it is conlleval's reading of invalid tags.
    S- becomes B-, E- becomes I-. Raises ValueError on an unknown tag, or an E-/S- tag when
    the scheme is IOB1 or IOB2.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}: expected one of {', '.join(SCHEMES)}")
    converted = []
    open_type = ""  # type of the entity the next I-/E- tag may continue; "" when none is open
    for tag in tags:
        prefix, entity_type = split_tag(tag)
        if prefix in ("E", "S") and scheme != "bioes":
            raise ValueError(f"{tag} is a BIOES tag, not valid in {scheme.upper()}")
        if prefix == "O":
            converted.append("O")
        elif prefix in ("I", "E") and entity_type == open_type:
            converted.append(f"I-{entity_type}")
        else:
            converted.append(f"B-{entity_type}")
        open_type = entity_type if prefix in ("B", "I") else ""
    return converted


def repair_iob2(tags: list[str]) -> list[str]:
    """IOB2 tags with every I- that does not continue an entity turned into B- (for model predictions)."""
    return to_iob2(tags, "iob2")


def entity_spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """The entities of IOB2 tags as (type, start, end), end exclusive, in order; tags are repaired first."""
    spans: list[tuple[str, int, int]] = []
    start = -1
    current = ""
    for index, tag in enumerate([*repair_iob2(tags), "O"]):
        prefix, entity_type = split_tag(tag)
        # After repair an I- always continues the open entity, so only B- and O close it.
        if prefix == "I":
            continue
        if current:
            spans.append((current, start, index))
        start, current = index, entity_type
    return spans
