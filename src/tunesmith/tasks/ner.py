"""Token classification (NER): a tag per word, entity-level scores, entity spans from raw text.

Tags are read in IOB1, IOB2 or BIOES and trained as IOB2: the entities are the same
in every scheme, and one scheme keeps decoding simple. Only a word's first sub-token
carries its tag (unless `ner.label_all_subtokens`, for training); evaluation always
scores one prediction per word, so the scores are word-level like conlleval's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from transformers import (
    AutoConfig,
    AutoModelForTokenClassification,
    DataCollatorForTokenClassification,
    PreTrainedModel,
)

from tunesmith.config import RunConfig
from tunesmith.errors import UserError, where
from tunesmith.models.dropout import dropout_options
from tunesmith.models.loading import load_weights
from tunesmith.tasks import TASKS, tagging
from tunesmith.tasks.encoding import cached_map
from tunesmith.tasks.protocol import Prepared, ValidationOutputs
from tunesmith.train import losses

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)

IGNORE = -100
CASE_TYPES = 4  # what `casing` returns: lower or uncased, Capitalised, UPPER, mIxed


def casing(piece: str) -> int:
    """The case of a sub-token's characters in the original text, as a token type.

    0: lower case or no cased letters (digits, punctuation, CJK), 1: Capitalised or a single
    capital, 2: UPPER, 3: mixed (McD, iP).
    """
    cased = [char for char in piece if char.islower() or char.isupper()]
    if not cased or all(char.islower() for char in cased):
        return 0
    if all(char.isupper() for char in cased):
        return 2 if len(cased) > 1 else 1
    if cased[0].isupper() and all(char.islower() for char in cased[1:]):
        return 1
    return 3


def with_case_types(model: PreTrainedModel) -> PreTrainedModel:
    """The model with CASE_TYPES token types, each starting as its pretrained type 0."""
    embeddings = getattr(model.base_model, "embeddings", None)
    old = getattr(embeddings, "token_type_embeddings", None)
    if old is None:
        raise _no_token_types(model.config.model_type)
    grown = torch.nn.Embedding(CASE_TYPES, old.embedding_dim, dtype=old.weight.dtype)
    with torch.no_grad():
        grown.weight.copy_(old.weight[:1].expand(CASE_TYPES, -1))
    embeddings.token_type_embeddings = grown
    model.config.type_vocab_size = CASE_TYPES
    return model


def check_case_types(backbone: str) -> None:
    """Fail before any work when `backbone`'s config shows no token types to carry the case.

    `with_case_types` checks the loaded model too; this catches the common case (DistilBERT,
    DeBERTa-v2) before the run folder exists.
    """
    config = AutoConfig.from_pretrained(backbone, trust_remote_code=False)
    if not getattr(config, "type_vocab_size", 0):
        raise _no_token_types(config.model_type)


def _no_token_types(model_type: str) -> UserError:
    return UserError(
        f"ner.word_case gives the model casing as token types, but {model_type} models have "
        "no token-type embeddings. Use a BERT-style backbone or set ner.word_case: false."
    )


def trains_case_types(model: torch.nn.Module) -> bool:
    return any(p.requires_grad for name, p in model.named_parameters() if "token_type_embeddings" in name)


def within_budget(
    batch: dict[str, list], tokenizer: Any, max_length: int
) -> tuple[list[list[str]], list[list[int]], list[bool]]:
    """Each sentence with as much of its context as fits in max_length, nearest words first.

    Context words are tagged IGNORE: read, never trained on or scored. A sentence too long
    for max_length by itself gets no context and is cut as usual (`truncated`).
    """
    rows = list(zip(batch["context_left"], batch["text"], batch["context_right"], batch["labels"], strict=True))
    whole = [[*left, *text, *right] for left, text, right, _ in rows]
    pieces = tokenizer(whole, is_split_into_words=True, add_special_tokens=False)
    budget = max_length - tokenizer.num_special_tokens_to_add()
    words, tags, cut = [], [], []
    for row, (left, text, right, labels) in enumerate(rows):
        cost = [0] * (len(left) + len(text) + len(right))  # sub-tokens per word
        for word in pieces.word_ids(row):
            if word is not None:
                cost[word] += 1
        left_cost, right_cost = cost[: len(left)][::-1], cost[len(left) + len(text) :]  # nearest word first
        room = budget - sum(cost[len(left) : len(left) + len(text)])
        before = after = 0
        # Alternate sides so that the sentence sits in the middle; a side stops at its first word that does not fit.
        while True:
            grew = False
            if before < len(left) and left_cost[before] <= room:
                room, before, grew = room - left_cost[before], before + 1, True
            if after < len(right) and right_cost[after] <= room:
                room, after, grew = room - right_cost[after], after + 1, True
            if not grew:
                break
        words.append([*left[len(left) - before :], *text, *right[:after]])
        tags.append([IGNORE] * before + list(labels) + [IGNORE] * after)
        cut.append(room < 0)
    return words, tags, cut


class NerTask:
    info = TASKS["ner"]
    main_metric = "f1"
    metric_names = ["loss", "f1", "precision", "recall", "accuracy", "f1_macro"]

    def __init__(self, cfg: RunConfig, state: dict[str, Any] | None = None):
        self.cfg = cfg
        self.options = cfg.ner
        state = state or {}
        self.names: list[str] = list(state.get("names", []))
        self.scheme: str = state.get("scheme", "iob2")
        # Per-tag loss weights (loss.class_weights), fitted on the training tags and saved with the run.
        self.class_weights: list[float] | None = state.get("class_weights")

    def fit_labels(self, train: datasets.Dataset, source: Path) -> None:
        for tags, line in zip(train["label"], train["line"], strict=True):
            for index, tag in enumerate(tags):
                try:
                    tagging.split_tag(tag)
                except ValueError:
                    # split_tag's own message says the same as this one, less the advice.
                    raise UserError(
                        f"{self._at(source, line, index)}: unknown tag {tag!r}. Tags must be O or "
                        "B-/I-/E-/S- plus a type (IOB1, IOB2 or BIOES), e.g. B-PER; check data.tag_column."
                    ) from None
        self.scheme = self.options.scheme
        if self.scheme == "auto":
            self.scheme = tagging.detect_scheme(train["label"])
        seen = {
            tag
            for tags, line in zip(train["label"], train["line"], strict=True)
            for tag in self._iob2(tags, source, line)
        }
        types = sorted({tag[2:] for tag in seen if tag != "O"})
        if not types:
            raise UserError(f"{source}: every training tag is O, so there are no entities to learn.")
        self.names = ["O"] + [f"{prefix}-{kind}" for kind in types for prefix in ("B", "I")]
        options = self.cfg.loss
        self.class_weights = losses.resolve_weights(
            options.class_weights,
            self.names,
            lambda: losses.class_weights(self._tag_counts(train, source), str(options.class_weights), options.beta),
            "loss.class_weights",
        )

    def _tag_counts(self, train: datasets.Dataset, source: Path) -> list[int]:
        """How often each tag occurs in training, one count per word (what the first sub-token trains on)."""
        ids = {name: index for index, name in enumerate(self.names)}
        counts = [0] * len(self.names)
        for tags, line in zip(train["label"], train["line"], strict=True):
            for tag in self._iob2(tags, source, line):
                counts[ids[tag]] += 1
        return counts

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"names": self.names, "scheme": self.scheme}
        if self.class_weights is not None:
            state["class_weights"] = self.class_weights
        return state

    def _at(self, source: Path, line: int, index: int) -> str:
        # CoNLL sentences hold one token per line, so token `index` sits `index` lines down.
        if Path(source).suffix.lower() in {".jsonl", ".json", ".ndjson", ".parquet"} or Path(source).is_dir():
            return f"{where(source, line)}, token {index + 1}"
        return where(source, line + index)

    def _iob2(self, tags: list[str], source: Path, line: int) -> list[str]:
        try:
            return tagging.to_iob2(tags, self.scheme)
        except ValueError as exc:
            raise UserError(
                f"{where(source, line)}: the tags of this sentence are not valid {self.scheme.upper()} ({exc}). "
                "Set ner.scheme to the data's scheme (iob1, iob2, bioes) or fix the tags."
            ) from None

    def encode(self, split: datasets.Dataset, source: Path) -> datasets.Dataset:
        ids = {name: index for index, name in enumerate(self.names)}
        targets = []
        for tokens, tags, line in zip(split["text"], split["label"], split["line"], strict=True):
            if len(tokens) != len(tags):
                raise UserError(
                    f"{where(source, line)}: this sentence has {len(tokens)} tokens but {len(tags)} tags. "
                    "Give exactly one tag per token."
                )
            row = []
            for index, tag in enumerate(self._iob2(tags, source, line)):
                if tag not in ids:
                    raise UserError(
                        f"{self._at(source, line, index)}: tag {tag!r} never appears in the training data "
                        f"(training tags: {', '.join(self.names)}). Fix the tag or add training sentences with it."
                    )
                row.append(ids[tag])
            targets.append(row)
        return split.remove_columns("label").add_column("labels", targets)

    def tokenize(self, split: datasets.Dataset, tokenizer: Any, training: bool) -> datasets.Dataset:
        """Sub-tokens of the words, with each word's tag on its first sub-token."""
        training_cfg = self.cfg.training
        tokenizer.truncation_side = training_cfg.truncation_side
        label_all = self.options.label_all_subtokens and training
        inside = {index: self.names.index("I-" + name[2:]) for index, name in enumerate(self.names) if name[:2] == "B-"}

        with_context = "context_left" in split.column_names
        word_case = self.options.word_case

        def encode(batch: dict[str, list]) -> dict[str, list]:
            words, tags, cut = batch["text"], batch["labels"], None
            if with_context:
                words, tags, cut = within_budget(batch, tokenizer, training_cfg.max_length)
            encoded = tokenizer(
                words,
                is_split_into_words=True,
                truncation=True,
                max_length=training_cfg.max_length,
                return_offsets_mapping=word_case,
            )
            if word_case:
                # With words given, offsets count from the start of each word.
                encoded["token_type_ids"] = [
                    [
                        0 if word is None else casing(words[row][word][begin:end])
                        for word, (begin, end) in zip(encoded.word_ids(row), offsets, strict=True)
                    ]
                    for row, offsets in enumerate(encoded.pop("offset_mapping"))
                ]
            aligned = []
            for row, word_labels in enumerate(tags):
                labels, previous = [], None
                for word in encoded.word_ids(row):
                    if word is None:
                        labels.append(IGNORE)
                    elif word != previous:
                        labels.append(word_labels[word])
                    else:
                        tag = word_labels[word]
                        labels.append(inside.get(tag, tag) if label_all else IGNORE)
                    previous = word
                aligned.append(labels)
            encoded["labels"] = aligned
            encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
            if cut is not None:
                # With context nearly every input reaches max_length: record cut sentences instead.
                encoded["truncated"] = cut
            return encoded

        key = [tokenizer, training_cfg.max_length, training_cfg.truncation_side, label_all, self.names, word_case]
        return cached_map(split, encode, key)

    def collator(self, tokenizer: Any) -> DataCollatorForTokenClassification:
        return DataCollatorForTokenClassification(tokenizer, label_pad_token_id=IGNORE)

    def check_backbone(self, backbone: str) -> None:
        if self.options.word_case:
            check_case_types(backbone)

    def load_model(self, backbone: str) -> PreTrainedModel:
        model = load_weights(
            AutoModelForTokenClassification,
            backbone,
            "backbone",
            num_labels=len(self.names),
            id2label=dict(enumerate(self.names)),
            label2id={name: index for index, name in enumerate(self.names)},
            dtype=torch.float32,
            **dropout_options(backbone, self.cfg.regularization, self.cfg.model),
        )
        return with_case_types(model) if self.options.word_case else model

    def load_trained(self, path: Path) -> PreTrainedModel:
        return load_weights(AutoModelForTokenClassification, path, "run")

    def new_trainable_modules(self) -> list[str]:
        # ner.word_case's token-type rows are new: frozen, they would stay copies of type 0.
        return ["token_type_embeddings"] if self.options.word_case else []

    def check_trainable(self, model: torch.nn.Module, strategy: str) -> None:
        if self.options.word_case and not trains_case_types(model):
            logger.warning(
                "ner.word_case: strategy %s freezes the token-type embeddings, so the case types never "
                "train and add nothing. Use full, layerwise, a peft method (lora, ...) or freeze with "
                "freeze.embeddings: false.",
                strategy,
            )

    def after_training(self, validation: Callable[[], ValidationOutputs] | None) -> None:
        pass

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sentence sums over tagged sub-tokens and their (class-weighted) counts, so the loop's mean
        is per token, torch's weighted mean under class weights."""
        options = self.cfg.loss
        per_token, weights = losses.single_label(
            logits.flatten(0, 1),
            targets.flatten(),
            focal=options.resolved(self.info.name) == "focal",
            gamma=options.gamma,
            weight=losses.loop_weights(self.class_weights, logits.device),
            label_smoothing=options.label_smoothing,
        )
        return per_token.view(targets.shape).sum(dim=1), weights.view(targets.shape).sum(dim=1)

    def predictions(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return logits.argmax(dim=-1).masked_fill(targets == IGNORE, IGNORE)

    def example_outputs(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.predictions(logits, targets)

    def example_records(self, outputs: np.ndarray, targets: np.ndarray) -> list[dict[str, Any]]:
        """Gold and predicted tag of each scored word (words past max_length are not scored)."""
        records = []
        for row_pred, row_true in zip(outputs, targets, strict=True):
            keep = row_true != IGNORE
            records.append(
                {"gold": [self.names[i] for i in row_true[keep]], "predicted": [self.names[i] for i in row_pred[keep]]}
            )
        return records

    def compute_metrics(self, predicted: list[np.ndarray], targets: list[np.ndarray]) -> dict[str, Any]:
        """Entity-level P/R/F1 (seqeval; conlleval rules, or strict IOB2), per-type report, tag accuracy."""
        # Imported on first use: seqeval brings scikit-learn, 18 MB in every process, training or not.
        from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score
        from seqeval.scheme import IOB2

        y_true, y_pred = [], []
        for batch_pred, batch_true in zip(predicted, targets, strict=True):
            for row_pred, row_true in zip(batch_pred, batch_true, strict=True):
                keep = row_true != IGNORE
                y_true.append([self.names[i] for i in row_true[keep]])
                y_pred.append([self.names[i] for i in row_pred[keep]])
        strict = {"mode": "strict", "scheme": IOB2} if self.options.strict else {}
        report = classification_report(y_true, y_pred, output_dict=True, zero_division=0, **strict)
        types = sorted(name for name in report if name not in {"micro avg", "macro avg", "weighted avg"})
        return {
            "f1": float(f1_score(y_true, y_pred, zero_division=0, **strict)),
            "precision": float(precision_score(y_true, y_pred, zero_division=0, **strict)),
            "recall": float(recall_score(y_true, y_pred, zero_division=0, **strict)),
            "f1_macro": float(report["macro avg"]["f1-score"]) if "macro avg" in report else 0.0,
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "per_class": {kind: {k: float(v) for k, v in report[kind].items()} for kind in types},
        }

    def preprocess(self, tokenizer: Any, texts: list[str], pairs: list[str] | None, batch_size: int) -> Prepared:
        """Raw texts in batches, with each batch's offsets and word ids kept for `decode`."""
        if pairs is not None:
            raise UserError("NER tags single texts; sentence pairs are for classification and regression.")
        prepared = Prepared(len(texts))
        tokenizer.truncation_side = self.cfg.training.truncation_side
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            encoded = tokenizer(
                chunk,
                truncation=True,
                max_length=self.cfg.training.max_length,
                padding=True,
                return_offsets_mapping=True,
                return_tensors="pt",
            )
            offsets = encoded.pop("offset_mapping").tolist()
            if self.options.word_case:
                # Special and padding positions have empty offsets, hence type 0.
                encoded["token_type_ids"] = torch.tensor(
                    [[casing(text[begin:end]) for begin, end in row] for text, row in zip(chunk, offsets, strict=True)]
                )
            word_ids = [encoded.word_ids(row) for row in range(len(chunk))]
            prepared.batches.append(dict(encoded))
            prepared.rows.append(list(range(start, start + len(chunk))))
            prepared.extra.append({"texts": chunk, "offsets": offsets, "word_ids": word_ids})
        return prepared

    def forward(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Tag probabilities per sub-token."""
        with torch.no_grad():
            inputs = {name: tensor.to(model.device) for name, tensor in batch.items()}
            return torch.softmax(model(**inputs).logits.float(), dim=-1).cpu()

    def decode(self, prepared: Prepared, outputs: list[torch.Tensor]) -> list[dict[str, Any]]:
        """Entities of each raw text as {text, type, start, end, score}; `end` is exclusive.

        Words are the tokenizer's own pre-tokenized words (whitespace and punctuation
        split, each CJK character a word); each word takes its first sub-token's tag,
        and invalid tag sequences are repaired the conlleval way before spans are read.
        """
        results: list[dict[str, Any]] = [{}] * prepared.count
        for rows, extra, probabilities in zip(prepared.rows, prepared.extra, outputs, strict=True):
            for position, row in enumerate(rows):
                results[row] = self._entities(
                    extra["texts"][position],
                    extra["word_ids"][position],
                    extra["offsets"][position],
                    probabilities[position],
                )
        return results

    def _entities(
        self, text: str, word_ids: list[int | None], offsets: list[list[int]], probabilities: torch.Tensor
    ) -> dict[str, Any]:
        spans: dict[int, list[int]] = {}
        first: dict[int, int] = {}
        for position, word in enumerate(word_ids):
            if word is None:
                continue
            first.setdefault(word, position)
            begin, end = offsets[position]
            span = spans.setdefault(word, [begin, end])
            span[1] = end
        words = sorted(first)
        scores, tags = probabilities[[first[w] for w in words]].max(dim=-1)
        labels = tagging.repair_iob2([self.names[i] for i in tags.tolist()])
        entities = []
        for kind, begin, end in tagging.entity_spans(labels):
            char_start, char_end = spans[words[begin]][0], spans[words[end - 1]][1]
            entities.append(
                {
                    "text": text[char_start:char_end],
                    "type": kind,
                    "start": char_start,
                    "end": char_end,
                    "score": float(scores[begin:end].mean()),
                }
            )
        return {"entities": entities}
