"""The pretraining config: the same YAML, flags and key=value overrides as a fine-tuning run.

    objective: mlm                 # or causal
    model: null                    # null: a new model from scratch; else a BERT to continue (mlm)
    tokenizer: runs/tok-en         # from `tunesmith tokenizer train`; default: the model's own
    data: {train: [corpus.txt]}
    training: {max_time: 45m}

The `training:` section is the fine-tuning one (train/loop.py runs both), with defaults for a small
budget: short blocks, a from-scratch learning rate, evaluation and checkpoints by steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from tunesmith.config import (
    NAME_HINT,
    TrainingConfig,
    _Section,
    name_problem,
    parse_assignment,
    read_yaml,
    set_dotted,
    validate_schema,
)
from tunesmith.errors import UserError, brief

CorpusFormat = Literal["auto", "text", "csv", "tsv", "jsonl", "parquet", "conll"]


class CorpusConfig(_Section):
    """Where the raw text comes from."""

    train: list[Path]
    # Held-out text for loss and perplexity; None: `validation_split` of the training documents.
    validation: list[Path] | None = None
    validation_split: float = Field(default=0.02, gt=0.0, lt=0.5)
    # "text" (.txt, .raw, .tokens): plain text; the table formats read `text_column`; conll joins a sentence's tokens.
    format: CorpusFormat = "auto"
    # Plain text: one document per line ("lines") or documents separated by blank lines ("paragraphs").
    documents: Literal["lines", "paragraphs"] = "lines"
    text_column: str = "text"
    # CoNLL files whose tokens carry a trailing position digit (Weibo NER writes "科0").
    strip_position_digits: bool = False
    # Concatenate documents and cut them into blocks of training.max_length tokens (no padding);
    # False: one example per document, cut at max_length.
    packing: bool = True
    # Read at most this many documents (seeded sample); None: all.
    max_documents: int | None = Field(default=None, gt=0)

    @field_validator("train", "validation", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, (str, Path)) else value


class MaskingConfig(_Section):
    """objective: mlm. Of the positions chosen, 80% become [MASK], 10% a random token, 10% stay (BERT's rule)."""

    # The share of tokens chosen for prediction; 0.3-0.4 may do better than BERT's 0.15 on small budgets.
    rate: float = Field(default=0.15, gt=0.0, lt=1.0)
    mask_share: float = Field(default=0.8, ge=0.0, le=1.0)
    random_share: float = Field(default=0.1, ge=0.0, le=1.0)
    # Choose whole words: every piece of a word is chosen together, and each becomes [MASK] (the shares
    # above do not apply: transformers' whole-word masking has no random or kept words).
    whole_word: bool = False

    @model_validator(mode="after")
    def _shares(self) -> MaskingConfig:
        if self.mask_share + self.random_share > 1.0:
            raise ValueError("mask_share + random_share must be at most 1 (the rest of the chosen tokens stay)")
        return self


class ArchitectureConfig(_Section):
    """The shape of a model built from scratch (the encoder of models/scratch, or a transformers decoder)."""

    hidden_size: int = Field(default=256, gt=0)
    num_layers: int = Field(default=4, gt=0)
    num_heads: int = Field(default=4, gt=0)
    intermediate_size: int = Field(default=1024, gt=0)
    max_positions: int = Field(default=512, gt=1)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    # objective causal: which transformers architecture the decoder is.
    decoder: Literal["gpt2", "llama"] = "gpt2"

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> ArchitectureConfig:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} must be a multiple of num_heads {self.num_heads}")
        return self


class VocabularyConfig(_Section):
    """Continued pretraining: add tokens learned from the corpus that the model's tokenizer lacks."""

    # How many new tokens at most; 0: keep the vocabulary as it is.
    add_tokens: int = Field(default=0, ge=0)
    # A token must occur this often in the corpus to be added.
    min_frequency: int = Field(default=5, gt=0)


# From scratch a small model takes large steps; continuing a trained one, BERT's fine-tuning-sized ones.
SCRATCH_LEARNING_RATE = 5e-4
CONTINUED_LEARNING_RATE = 1e-4
PRETRAINING_DEFAULTS: dict[str, Any] = {
    "max_length": 128,
    "epochs": 1,
    "warmup_ratio": 0.06,
    "eval_each_epoch": True,
    "eval_steps": 500,
    "logging_steps": 50,
    "save_steps": 500,
    "group_by_length": False,
    "cpu_speedups": False,
}


class PretrainConfig(_Section):
    """Everything one pretraining run needs; saved fully resolved as <run>/config.yaml."""

    name: str | None = None
    output_dir: Path | None = None
    objective: Literal["mlm", "causal"] = "mlm"
    # None: a new model from scratch; else a BERT-architecture model ("minilm", a folder, a hub id) whose
    # masked-LM training continues on this corpus (domain- or task-adaptive pretraining).
    model: str | None = None
    # A tokenizer folder; None: the model's own (needed when training from scratch).
    tokenizer: str | None = None
    architecture: ArchitectureConfig = ArchitectureConfig()
    vocabulary: VocabularyConfig = VocabularyConfig()
    data: CorpusConfig
    mlm: MaskingConfig = MaskingConfig()
    training: TrainingConfig = TrainingConfig()

    @model_validator(mode="before")
    @classmethod
    def _pretraining_defaults(cls, raw: Any) -> Any:
        # Filled in before validation so that the saved config holds the values actually used.
        if not isinstance(raw, dict) or not isinstance(raw.get("training", {}), dict):
            return raw
        given = raw.get("training", {})
        rate = SCRATCH_LEARNING_RATE if raw.get("model") is None else CONTINUED_LEARNING_RATE
        defaults = dict(PRETRAINING_DEFAULTS)
        if given.get("warmup_steps") is not None:
            defaults.pop("warmup_ratio")  # a warm-up given in steps replaces the default ratio
        training = {**defaults, "learning_rate": rate, **given}
        return {**raw, "training": training}

    @model_validator(mode="after")
    def _coherent(self) -> PretrainConfig:
        if self.model is None and self.tokenizer is None:
            raise ValueError(
                "a model from scratch needs a tokenizer: set tokenizer to a folder from `tunesmith tokenizer "
                "train`, or set model to a BERT model to continue pretraining it"
            )
        if self.objective == "causal" and self.model is not None:
            raise ValueError("objective causal builds a decoder from scratch: drop model (set tokenizer instead)")
        if self.vocabulary.add_tokens and self.model is None:
            raise ValueError("vocabulary.add_tokens extends a pretrained model's vocabulary: set model, or drop it")
        if self.training.max_length > self.architecture.max_positions and self.model is None:
            raise ValueError(
                f"training.max_length {self.training.max_length} is longer than architecture.max_positions "
                f"{self.architecture.max_positions}: the model would have no position for the tokens past it"
            )
        return self

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str | None) -> str | None:
        problem = name_problem(name) if name is not None else None
        if problem:
            raise ValueError(f"{brief(name)} {problem}. {NAME_HINT}")
        return name

    def run_dir(self) -> Path:
        if self.output_dir is not None:
            return self.output_dir
        return Path("runs") / (self.name or f"pretrain-{self.objective}-{self.data.train[0].stem or 'corpus'}")

    def resolved(self) -> PretrainConfig:
        data = self.data.model_copy(
            update={
                "train": [path.resolve() for path in self.data.train],
                "validation": [path.resolve() for path in self.data.validation] if self.data.validation else None,
            }
        )
        return self.model_copy(update={"output_dir": self.run_dir(), "name": self.run_dir().name, "data": data})


def load_pretrain_config(
    path: Path | None = None, overrides: dict[str, Any] | None = None, assignments: list[str] | None = None
) -> PretrainConfig:
    """A PretrainConfig from a YAML file, then flag values, then key=value assignments."""
    raw: dict[str, Any] = read_yaml(path) if path is not None else {}
    for key, value in (overrides or {}).items():
        set_dotted(raw, key, value)
    for assignment in assignments or []:
        set_dotted(raw, *parse_assignment(assignment))
    return validate_schema(PretrainConfig, raw, str(path) if path is not None else "the command line")


def saved_pretrain_config(run_dir: Path) -> PretrainConfig:
    path = run_dir / "config.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{path} cannot be read ({exc}): this is not a pretraining run folder.") from None
    return validate_schema(PretrainConfig, raw, str(path), saved=True)
