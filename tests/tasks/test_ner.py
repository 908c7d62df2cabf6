from pathlib import Path

import datasets
import numpy as np
import pytest
import torch

from tunesmith.config import RunConfig
from tunesmith.errors import UserError
from tunesmith.models.backbones import load_tokenizer, resolve
from tunesmith.tasks.ner import IGNORE, NerTask, casing

SOURCE = Path("train.conll")


def split(sentences: list[tuple[list[str], list[str]]], first_line: int = 1) -> datasets.Dataset:
    lines, line = [], first_line
    for tokens, _ in sentences:
        lines.append(line)
        line += len(tokens) + 1  # one token per line, then a blank line
    return datasets.Dataset.from_dict(
        {"text": [s[0] for s in sentences], "label": [s[1] for s in sentences], "line": lines}
    )


TRAIN = [
    (["EU", "rejects", "German", "call"], ["B-ORG", "O", "B-MISC", "O"]),
    (["Peter", "Blackburn", "in", "Brussels"], ["B-PER", "I-PER", "O", "B-LOC"]),
]


def task(sentences=TRAIN, **options: object) -> NerTask:
    made = NerTask(RunConfig.model_validate({"task": "ner", "data": {"train": "t.conll"}, "ner": options}))
    made.fit_labels(split(sentences), SOURCE)
    return made


def test_tags_are_o_then_b_and_i_per_type() -> None:
    fitted = task()
    assert fitted.names == ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert fitted.scheme == "iob2"
    assert fitted.encode(split(TRAIN[:1]), SOURCE)["labels"] == [[5, 0, 3, 0]]


@pytest.mark.parametrize(
    ("tags", "scheme"),
    [
        (["I-PER", "I-PER", "O", "I-LOC"], "iob1"),
        (["B-PER", "E-PER", "O", "S-LOC"], "bioes"),
    ],
)
def test_iob1_and_bioes_train_as_iob2(tags: list[str], scheme: str) -> None:
    fitted = task([(["Peter", "Blackburn", "in", "Brussels"], tags)])
    assert fitted.scheme == scheme
    expected = [fitted.names.index(t) for t in ["B-PER", "I-PER", "O", "B-LOC"]]
    assert fitted.encode(split([(["Peter", "Blackburn", "in", "Brussels"], tags)]), SOURCE)["labels"] == [expected]


def test_unknown_tag_names_the_tokens_own_line() -> None:
    sentences = [*TRAIN, (["a", "b", "c"], ["O", "O", "PERSON"])]
    with pytest.raises(UserError, match=r"train.conll, line 13: unknown tag 'PERSON'.*IOB1, IOB2 or BIOES"):
        task(sentences)


def test_bioes_tags_under_a_declared_iob2_scheme_are_an_error() -> None:
    with pytest.raises(UserError, match=r"train.conll, line 1: the tags of this sentence are not valid IOB2"):
        task([(["Peter", "Blackburn"], ["B-PER", "E-PER"])], scheme="iob2")


def test_token_and_tag_counts_must_match() -> None:
    fitted = task()
    bad = datasets.Dataset.from_dict({"text": [["a", "b", "c"]], "label": [["O", "O"]], "line": [7]})
    with pytest.raises(UserError, match=r"dev.conll, line 7: this sentence has 3 tokens but 2 tags"):
        fitted.encode(bad, Path("dev.conll"))


def test_a_tag_unseen_in_training_names_its_line() -> None:
    fitted = task()
    with pytest.raises(UserError, match=r"dev.conll, line 12: tag 'B-DATE' never appears in the training data"):
        fitted.encode(split([(["in", "May"], ["O", "B-DATE"])], first_line=11), Path("dev.conll"))


def test_only_first_subtokens_carry_tags_unless_all_are_labelled() -> None:
    tokenizer = load_tokenizer(resolve("minilm"))
    sentence = [(["Blackburnshire", "visited"], ["B-LOC", "O"])]
    pieces = tokenizer.tokenize("Blackburnshire")
    assert len(pieces) > 1
    for label_all, training in [(False, True), (True, True), (True, False)]:
        fitted = task([*TRAIN, *sentence], label_all_subtokens=label_all)
        encoded = fitted.tokenize(fitted.encode(split(sentence), SOURCE), tokenizer, training)
        labels = encoded["labels"][0]
        b_loc, i_loc, outside = (fitted.names.index(t) for t in ("B-LOC", "I-LOC", "O"))
        rest = [i_loc] * (len(pieces) - 1) if label_all and training else [IGNORE] * (len(pieces) - 1)
        assert labels == [IGNORE, b_loc, *rest, outside, IGNORE]


def test_loss_averages_over_tagged_tokens_only() -> None:
    fitted = task()
    logits = torch.zeros(2, 3, len(fitted.names))
    targets = torch.tensor([[IGNORE, 1, 2], [IGNORE, 0, IGNORE]])
    sums, counts = fitted.loss(logits, targets)
    assert counts.tolist() == [2, 1]
    assert sums.tolist() == pytest.approx([2 * np.log(9), np.log(9)])


def test_entity_level_metrics_and_strict_mode() -> None:
    fitted = task()
    ids = {name: i for i, name in enumerate(fitted.names)}
    gold = ["B-PER", "I-PER", "O", "B-LOC"]
    # PER found; the LOC is predicted as a bare I-LOC: conlleval counts it, strict IOB2 does not.
    predicted = ["B-PER", "I-PER", "O", "I-LOC"]
    row_true = np.array([[IGNORE] + [ids[t] for t in gold] + [IGNORE]])
    row_pred = np.array([[IGNORE] + [ids[t] for t in predicted] + [IGNORE]])
    lenient = fitted.compute_metrics([row_pred], [row_true])
    assert lenient["f1"] == 1.0 and lenient["accuracy"] == pytest.approx(3 / 4)
    strict = task(strict=True).compute_metrics([row_pred], [row_true])
    assert strict["precision"] == 1.0 and strict["recall"] == 0.5
    assert set(lenient["per_class"]) == {"LOC", "PER"} and lenient["per_class"]["PER"]["support"] == 1


def test_entities_are_character_spans_of_the_raw_text() -> None:
    fitted = task()
    tokenizer = load_tokenizer(resolve("minilm"))
    text = "Yesterday  Peter Blackburn flew to Brussels."
    encoded = tokenizer(text, return_offsets_mapping=True)
    word_ids = encoded.word_ids()
    tags_by_word = {1: "B-PER", 2: "I-PER", 5: "I-LOC"}  # a bare I-LOC is repaired to an entity start
    probabilities = torch.zeros(len(word_ids), len(fitted.names))
    for position, word in enumerate(word_ids):
        probabilities[position, fitted.names.index(tags_by_word.get(word, "O"))] = 1.0
    result = fitted._entities(text, word_ids, encoded["offset_mapping"], probabilities)
    assert [(e["text"], e["type"], e["start"], e["end"]) for e in result["entities"]] == [
        ("Peter Blackburn", "PER", 11, 26),
        ("Brussels", "LOC", 35, 43),
    ]
    assert all(e["score"] == 1.0 for e in result["entities"])


@pytest.mark.parametrize(
    ("piece", "kind"),
    [
        ("rejects", 0),
        ("1996", 0),
        (",", 0),
        ("北京", 0),
        ("German", 1),
        ("U", 1),
        ("EU", 2),
        ("McDonald", 3),
        ("iPhone", 3),
    ],
)
def test_casing_types(piece: str, kind: int) -> None:
    assert casing(piece) == kind


def test_word_case_gives_each_subtoken_its_casing_alike_in_training_and_prediction(tiny_model: str) -> None:
    fitted = task(word_case=True)
    tokenizer = load_tokenizer(tiny_model)
    words = ["EU", "rejects", "McAllister", "U.S."]
    encoded = fitted.tokenize(
        fitted.encode(split([(words, ["B-ORG", "O", "B-PER", "B-LOC"])]), SOURCE), tokenizer, True
    )
    # The case of each piece's own characters: "McA", "llis", "ter", then "U", ".", "S", "."
    assert tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])[3:6] == ["mca", "##llis", "##ter"]
    assert encoded["token_type_ids"][0] == [0, 2, 0, 3, 0, 0, 1, 0, 1, 0, 0]

    model = fitted.load_model(tiny_model)
    assert model.config.type_vocab_size == 4
    seen = []
    model.register_forward_pre_hook(lambda _, args, kwargs: seen.append(kwargs["token_type_ids"]), with_kwargs=True)
    prepared = fitted.preprocess(tokenizer, [" ".join(words)], None, batch_size=4)
    fitted.forward(model, prepared.batches[0])
    assert seen[0][0].tolist() == encoded["token_type_ids"][0]


def test_case_types_start_as_the_pretrained_type_so_outputs_start_unchanged(tiny_model: str) -> None:
    plain = task().load_model(tiny_model).eval()
    cased = task(word_case=True).load_model(tiny_model).eval()
    cased.classifier.load_state_dict(plain.classifier.state_dict())  # the heads start random
    input_ids = torch.tensor([[101, 7327, 19164, 102]])
    with torch.no_grad():
        before = plain(input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids)).logits
        after = cased(input_ids=input_ids, token_type_ids=torch.tensor([[0, 2, 1, 3]])).logits
    torch.testing.assert_close(after, before)


def test_word_case_needs_token_type_embeddings(tmp_path: Path) -> None:
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

    config = DistilBertConfig(vocab_size=30522, dim=32, n_layers=1, n_heads=2, hidden_dim=64)
    DistilBertModel(config).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(resolve("minilm")).save_pretrained(tmp_path)
    with pytest.raises(UserError, match="distilbert models have no token-type embeddings.*ner.word_case: false"):
        task(word_case=True).load_model(str(tmp_path))


def with_context(max_length: int, left: list[str], right: list[str]) -> datasets.Dataset:
    """TRAIN's second sentence between its context words, tokenized for training at max_length."""
    fitted = NerTask(
        RunConfig.model_validate({"task": "ner", "data": {"train": "t.conll"}, "training": {"max_length": max_length}})
    )
    fitted.fit_labels(split(TRAIN), SOURCE)
    rows = fitted.encode(split(TRAIN[1:]), SOURCE)
    rows = rows.add_column("context_left", [left]).add_column("context_right", [right])
    return fitted.tokenize(rows, load_tokenizer(resolve("minilm")), training=True)


def test_context_words_are_read_but_never_tagged() -> None:
    tokenizer = load_tokenizer(resolve("minilm"))
    alone = task().tokenize(task().encode(split(TRAIN[1:]), SOURCE), tokenizer, True)
    encoded = with_context(64, ["the", "report", "said"], ["on", "monday"])
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    sentence = tokenizer.convert_ids_to_tokens(alone["input_ids"][0])[1:-1]
    assert tokens == ["[CLS]", "the", "report", "said", *sentence, "on", "monday", "[SEP]"]
    labels = encoded["labels"][0]
    assert labels[:4] == [IGNORE] * 4 and labels[-3:] == [IGNORE] * 3
    assert [label for label in labels if label != IGNORE] == [label for label in alone["labels"][0] if label != IGNORE]
    assert encoded["truncated"] == [False]


def test_context_is_trimmed_to_max_length_nearest_words_first() -> None:
    tokenizer = load_tokenizer(resolve("minilm"))
    pieces = sum(len(tokenizer.tokenize(word)) for word in TRAIN[1][0])
    encoded = with_context(pieces + 2 + 3, ["the", "report", "said"], ["on", "monday"])
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    # Three sub-tokens of room: "said", "on", then "report" (left and right take turns).
    assert tokens[1:3] == ["report", "said"] and tokens[-2:] == ["on", "[SEP]"]
    assert len(tokens) == pieces + 5 and encoded["truncated"] == [False]


def test_a_sentence_longer_than_max_length_gets_no_context_and_counts_as_truncated() -> None:
    encoded = with_context(4, ["the", "report"], ["on"])
    assert encoded["length"] == [4] and encoded["truncated"] == [True]
    tokens = load_tokenizer(resolve("minilm")).convert_ids_to_tokens(encoded["input_ids"][0])
    assert tokens[:2] == ["[CLS]", "peter"]
