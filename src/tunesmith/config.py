"""The run config: one pydantic schema, read from YAML, flags and key=value overrides.

A minimal config names the training file and, when they differ from the defaults,
the columns; everything else has a default. Unknown keys are rejected with a
did-you-mean, because a misspelt key silently ignored is a run wasted.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from tunesmith.data.doctor.findings import CHECKS
from tunesmith.errors import UserError, brief
from tunesmith.tasks import TASK_NAMES, TASKS

DataFormat = Literal["auto", "csv", "tsv", "jsonl", "parquet", "arrow", "conll"]
FORMATS: tuple[str, ...] = DataFormat.__args__
MAX_PROBLEMS = 3
Schema = TypeVar("Schema", bound=BaseModel)
# The registry's names (tasks/__init__.py); Literal of a tuple is a Literal of its items.
TaskName = Literal[TASK_NAMES]  # type: ignore[valid-type]
StrategyName = Literal[
    "full",
    "freeze",
    "head_only",
    "gradual",
    "llrd",
    "bitfit",
    "lora",
    "adalora",
    "ia3",
    "prefix",
    "prompt",
    "ptuning",
    "adapter",
]
STRATEGIES: tuple[str, ...] = StrategyName.__args__
# The strategies that train and save the model itself (no adapter beside a backbone): what continual runs take.
CONTINUAL_STRATEGIES = ("full", "freeze", "head_only", "gradual", "llrd", "bitfit")
# The learning rate each strategy gets when training.learning_rate is not given: the fewer
# parameters train, the larger the steps they need (peft's and the papers' recipes).
DEFAULT_LEARNING_RATES: dict[str, float] = {
    "full": 5e-5,
    "freeze": 5e-5,
    "gradual": 5e-5,
    "llrd": 1e-4,
    "head_only": 1e-3,
    "bitfit": 1e-3,
    "lora": 5e-4,
    "adalora": 1e-3,
    "ia3": 5e-3,
    "prefix": 1e-2,
    "prompt": 3e-2,
    "ptuning": 1e-3,
    "adapter": 1e-3,
}


class _Section(BaseModel):
    # inf and NaN are never meant: a learning rate of .inf trains to NaN weights and "finishes".
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class DataConfig(_Section):
    """Where the examples come from and which columns hold what."""

    train: Path
    validation: Path | None = None
    test: Path | None = None
    format: DataFormat = "auto"
    # NER's defaults are "tokens" and "tags" instead (the config fills them in).
    text_column: str = "text"
    # The second text of a sentence pair (paraphrase, NLI); None for single texts.
    text_pair_column: str | None = None
    label_column: str = "label"
    # The label vocabulary, as a list or a file with one name per line; integer labels index into it.
    label_names: list[str] | Path | None = None
    # Names for the columns of a CSV/TSV file without a header line.
    column_names: list[str] | None = None
    # Fractions of train carved off (stratified, seeded) for splits not given as files.
    validation_split: float = Field(default=0.1, ge=0.0, lt=1.0)
    test_split: float = Field(default=0.1, ge=0.0, lt=1.0)
    # Train on a seeded random subset of this many rows (quick experiments).
    max_train_rows: int | None = Field(default=None, gt=0)
    # Few-shot: train on this many rows of each label, drawn with training.seed (after the splits are carved).
    shots_per_class: int | None = Field(default=None, gt=0)
    # Also train on every pair with its two texts swapped, doubling the training set. Only for
    # symmetric tasks (paraphrase, similarity), where the order of the texts carries no meaning.
    swap_pairs: bool = False
    # Score every pair in both orders and average the two outputs (logits), in evaluation and
    # prediction: for tasks where the order of the two texts carries no meaning.
    average_pair_orders: bool = False
    # CoNLL files: which whitespace-separated field holds the tag (Python index, -1 = last).
    tag_column: int = -1
    # CoNLL files whose tokens carry a trailing position digit (Weibo NER writes "科0").
    strip_position_digits: bool = False

    @model_validator(mode="after")
    def _splits_leave_training_data(self) -> DataConfig:
        if self.validation_split + self.test_split >= 1.0:
            raise ValueError("validation_split + test_split must be below 1")
        return self

    @model_validator(mode="after")
    def _swapping_needs_pairs(self) -> DataConfig:
        for option in ("swap_pairs", "average_pair_orders"):
            if getattr(self, option) and self.text_pair_column is None:
                raise ValueError(f"{option} needs a second text to swap with: set text_pair_column, or drop {option}")
        return self


OptimizerName = Literal["adamw", "adam", "sgd", "rmsprop", "adafactor"]
SchedulerName = Literal["linear", "cosine", "cosine_with_restarts", "polynomial", "constant"]
DEFAULT_WARMUP_RATIO = 0.1

# Replaced by training.cpu_speedups; still read from older run folders' config.yaml.
LEGACY_SPEEDUP_SWITCHES = {"cls_only_last_layer", "word_dropout"}


class TrainingConfig(_Section):
    """The optimisation recipe."""

    epochs: int = Field(default=3, gt=0)
    # Stop after this many optimizer steps, whatever `epochs` says.
    max_steps: int | None = Field(default=None, gt=0)
    # A time budget for training, in seconds or as "45m", "1h30m", "90s": the run ends on time,
    # its learning-rate schedule fitted to the steps that the budget holds (measured as it trains).
    max_time: float | None = Field(default=None, gt=0)
    batch_size: int = Field(default=32, gt=0)
    eval_batch_size: int = Field(default=64, gt=0)
    learning_rate: float = Field(default=5e-5, gt=0)
    # Learning rate of the task head (classifier and pooler); None: the same as learning_rate.
    head_learning_rate: float | None = Field(default=None, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    # Parameters whose name holds one of these (case-insensitive) take no weight decay: biases and norm gains.
    no_decay: list[str] = ["bias", "norm.weight", "ln_"]
    # torch's optimizer (docs/optimization.md); betas and eps: Adam(W)'s (eps also RMSprop's).
    optimizer: OptimizerName = "adamw"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(default=1e-8, gt=0)
    # SGD's and RMSprop's momentum; nesterov: SGD's Nesterov momentum (needs momentum above 0).
    momentum: float = Field(default=0.0, ge=0, lt=1)
    nesterov: bool = False
    # transformers' schedule after the warm-up; cycles: cosine_with_restarts' hard restarts; power and
    # end_learning_rate: polynomial's.
    scheduler: SchedulerName = "linear"
    cycles: int = Field(default=1, gt=0)
    power: float = Field(default=1.0, gt=0)
    end_learning_rate: float = Field(default=1e-7, ge=0)
    # Warm-up as a fraction of the steps (0.1 when warmup_steps is unset) or as a number of steps; not both.
    warmup_ratio: float | None = Field(default=None, ge=0, le=1)
    warmup_steps: int | None = Field(default=None, ge=0)
    # Clip the global gradient norm to this; None turns clipping off.
    max_grad_norm: float | None = Field(default=1.0, gt=0)
    gradient_accumulation_steps: int = Field(default=1, gt=0)
    max_length: int = Field(default=256, gt=1)
    # Which end of a too-long text is cut off.
    truncation_side: Literal["right", "left"] = "right"
    # Batch texts of similar length together so that padding wastes little compute.
    group_by_length: bool = True
    # Evaluate on validation at the end of each epoch, and/or every `eval_steps` steps.
    eval_each_epoch: bool = True
    eval_steps: int | None = Field(default=None, gt=0)
    logging_steps: int = Field(default=50, gt=0)
    # Stop after this many evaluations without improvement, then restore the best model.
    early_stopping_patience: int | None = Field(default=None, gt=0)
    # The validation metric that picks the best model; None: the task's main metric.
    metric_for_best: str | None = None
    seed: int = 42
    # Write a resumable checkpoint every this many optimizer steps (also at every evaluation
    # and epoch end); None: only at evaluations and epoch ends.
    save_steps: int | None = Field(default=500, gt=0)
    # How many of the latest checkpoints to keep; the best one is kept as well.
    save_total_limit: int = Field(default=2, gt=0)
    # Keep checkpoints/ once the run has finished; the final model is in model/ either way.
    keep_checkpoints: bool = False
    # Recompute activations in the backward pass instead of storing them: less memory, ~30% slower.
    gradient_checkpointing: bool = False
    # Autocast precision. "auto": bf16 on GPUs that have it (else fp16) and on CPUs with AMX or
    # AVX512-BF16; fp32 elsewhere, since emulated bf16 is slower than fp32.
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    # torch.compile the model (dynamic shapes). On 2 CPU cores MiniLM took ~1.5 min to compile and
    # stepped no faster (bench/RESULTS.md); worth trying for long runs on a GPU.
    compile: bool = False
    # The CPU speed patches of tunesmith.speedups (docs/configuration.md): the first-token last
    # layer, sliced-mask dropout and attention, the kept embedding gradient. Each applies only on
    # the CPU, with a tested transformers release, and after its self-check; false: none.
    cpu_speedups: bool = True

    @model_validator(mode="before")
    @classmethod
    def _legacy_speedup_switches(cls, data: object) -> object:
        # Run folders from before cpu_speedups hold the two switches it replaced: either one off
        # turns them all off, so that such a run predicts as it was trained.
        if not isinstance(data, dict) or not LEGACY_SPEEDUP_SWITCHES & data.keys():
            return data
        data = dict(data)
        legacy = [data.pop(key) for key in sorted(LEGACY_SPEEDUP_SWITCHES & data.keys())]
        if "cpu_speedups" not in data:
            data["cpu_speedups"] = all(legacy)
        return data

    @model_validator(mode="before")
    @classmethod
    def _warmup_ratio_unless_steps(cls, data: object) -> object:
        # Filled in before validation so that a saved config holds the warm-up actually used, and reloads.
        if isinstance(data, dict) and data.get("warmup_ratio") is None and data.get("warmup_steps") is None:
            return {**data, "warmup_ratio": DEFAULT_WARMUP_RATIO}
        return data

    @model_validator(mode="after")
    def _one_warmup(self) -> TrainingConfig:
        if self.warmup_ratio is not None and self.warmup_steps is not None:
            raise ValueError("set warmup_ratio or warmup_steps, not both: drop one of them")
        return self

    @model_validator(mode="after")
    def _optimizer_options(self) -> TrainingConfig:
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            raise ValueError("nesterov is SGD's Nesterov momentum: set optimizer: sgd and momentum above 0 (e.g. 0.9)")
        if self.scheduler == "polynomial" and self.end_learning_rate >= self.learning_rate:
            raise ValueError(
                f"end_learning_rate ({self.end_learning_rate}) must be below learning_rate ({self.learning_rate}) "
                "for the polynomial schedule to decay: lower end_learning_rate"
            )
        return self

    @field_validator("max_time", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _bare_no_means_no(cls, value: object) -> object:
        # YAML reads a bare `no` as false, in a config file and in training.mixed_precision=no alike.
        return "no" if value is False else value

    @model_validator(mode="after")
    def _early_stopping_needs_evaluations(self) -> TrainingConfig:
        if self.early_stopping_patience is not None and not self.evaluates:
            raise ValueError("early_stopping_patience needs evaluations: set eval_each_epoch or eval_steps")
        return self

    @property
    def evaluates(self) -> bool:
        return self.eval_each_epoch or self.eval_steps is not None


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")


def parse_duration(text: str) -> float:
    """Seconds in "45m", "1h30m", "90s", "1.5h" or "600"."""
    found = _DURATION.fullmatch(text.strip().lower().replace(" ", ""))
    if not text.strip() or found is None or not any(found.groups()):
        raise ValueError(f"{text!r} is not a duration: write it as 45m, 1h30m, 90s or a number of seconds")
    hours, minutes, seconds = (float(part) if part else 0.0 for part in found.groups())
    return hours * 3600 + minutes * 60 + seconds


class RegularizationConfig(_Section):
    """Dropout rates that replace the backbone's own (None keeps its own), set in its config before it loads;
    and L2-SP, a pull toward the weights the run started from (continual/pull.py, docs/continual.md)."""

    # On hidden states and embeddings (BERT: hidden_dropout_prob).
    hidden_dropout: float | None = Field(default=None, ge=0, lt=1)
    # On attention probabilities (BERT: attention_probs_dropout_prob).
    attention_dropout: float | None = Field(default=None, ge=0, lt=1)
    # Before the task head (BERT: classifier_dropout, else the hidden rate).
    classifier_dropout: float | None = Field(default=None, ge=0, lt=1)
    # L2-SP: (l2sp / 2) * ||w - w0||^2 over the encoder's weights, w0 the weights the run started from
    # (the pretrained backbone; the new head is left free). 0: off.
    l2sp: float = Field(default=0.0, ge=0)

    @property
    def overrides(self) -> dict[str, float]:
        """The dropout rates given, by field name."""
        rates = {"hidden_dropout": self.hidden_dropout, "attention_dropout": self.attention_dropout,
                 "classifier_dropout": self.classifier_dropout}  # fmt: skip
        return {name: rate for name, rate in rates.items() if rate is not None}


class ClassificationOptions(_Section):
    # The class whose F1 is reported as `f1` in binary tasks; None: the last label name.
    positive_label: str | None = None


class RegressionOptions(_Section):
    loss: Literal["mse", "huber"] = "mse"
    huber_delta: float = Field(default=1.0, gt=0)
    # Train on standardised (z-scored) or min-max scaled targets; predictions are scaled back.
    target_scaling: Literal["none", "standard", "minmax"] = "none"


class MultiLabelOptions(_Section):
    # Separates the labels of one row when they are written as one string ("anger,joy").
    separator: str = ","
    threshold: float = Field(default=0.5, gt=0, lt=1)
    # Choose each label's threshold to maximise its F1 on validation, after training.
    tune_thresholds: bool = False


class NerOptions(_Section):
    # Tag scheme of the data; "auto" detects IOB1, IOB2 or BIOES. Tags are trained as IOB2.
    scheme: Literal["auto", "iob1", "iob2", "bioes"] = "auto"
    # Label every sub-token of a word (training only); False labels the first and ignores the rest.
    label_all_subtokens: bool = False
    # seqeval strict mode: an entity counts only if its tags form a valid IOB2 chunk.
    strict: bool = False
    # Document context (FLERT): up to this many words of the neighbouring sentences of the same
    # document on each side, read with the sentence but not tagged; trimmed to fit max_length.
    # CoNLL files mark documents with -DOCSTART-; a file without marks is one document. 0: none.
    context_words: int = Field(default=0, ge=0)
    # Give the model each sub-token's casing in the original text (lower or none, Capitalised,
    # UPPER, mIxed) as its token type. Uncased backbones such as the bundled MiniLM lower-case
    # their input, and case is a strong clue to names. The token-type embeddings grow to 4,
    # the new ones starting as a copy of type 0, and train with the embeddings.
    word_case: bool = False


LossName = Literal["auto", "cross_entropy", "focal", "bce", "mse", "huber"]
# Weights per label: computed from the training labels, or given as a list (label order) or a {label: weight} map.
LabelWeights = (
    Literal["none", "inverse", "effective"]
    | list[Annotated[float, Field(gt=0)]]
    | dict[str, Annotated[float, Field(gt=0)]]
)


class LossOptions(_Section):
    """What the task's model is trained to minimise (docs/losses.md)."""

    # auto: cross_entropy (classification, ner), bce (multilabel), regression.loss (regression).
    name: LossName = "auto"
    # Cross-entropy against (1 - e) * one-hot + e / C (torch's label_smoothing); classification and ner.
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    # Per-class weights of cross_entropy or focal: none, inverse (n / (C * n_c)), effective (effective
    # number of samples, Cui et al. 2019, with `beta`), a list in label order, or a {label: weight} map.
    class_weights: LabelWeights = "none"
    beta: float = Field(default=0.999, gt=0, lt=1)
    # Focal loss: (1 - p_t)^gamma down-weights easy examples; gamma 0 is cross-entropy / BCE.
    gamma: float = Field(default=2.0, ge=0)
    # Focal alpha: the weight of positives (1 - alpha of negatives): multilabel, or binary classification.
    alpha: float | None = Field(default=None, gt=0, lt=1)
    # Multilabel BCE's weight of each label's positives: none, inverse (negatives / positives in train),
    # a list in label order, or a {label: weight} map.
    pos_weight: LabelWeights = "none"
    # Huber loss threshold; None: regression.huber_delta.
    huber_delta: float | None = Field(default=None, gt=0)

    @field_validator("class_weights", "pos_weight", mode="before")
    @classmethod
    def _label_keys(cls, value: object) -> object:
        return label_keys_as_text(value)

    @field_validator("pos_weight")
    @classmethod
    def _no_effective_pos_weight(cls, value: object) -> object:
        if value == "effective":
            raise ValueError("the effective number weights classes: use pos_weight none, inverse, a list or a map")
        return value

    def problem(self, task: str, method: str, regression_loss: str) -> str | None:
        """Why these options do not fit `task` (None when they do); the message names the field.

        Options are compared with their defaults, not with what the YAML named: a run folder's
        config.yaml names every option, and must load again.
        """
        defaults = LossOptions()
        allowed = TASKS[task].losses
        if not allowed or method != "finetune":
            if self != defaults:
                what = f"task {task}" if not allowed else f"method {method}"
                tasks = ", ".join(name for name, info in TASKS.items() if info.losses)
                return f"{what} brings its own loss: drop the loss section (it applies to method finetune of {tasks})"
            return None
        if self.name != "auto" and self.name not in allowed:
            return f"loss.name {self.name} does not fit task {task}: use {' or '.join(allowed)}"
        if TASKS[task].target == "number" and self.name != "auto" and regression_loss not in ("mse", self.name):
            return f"loss.name {self.name} and regression.loss {regression_loss} disagree: set only loss.name"
        name = self.resolved(task, regression_loss)
        # One class per example or per token: what class weights and label smoothing apply to.
        single = TASKS[task].target in ("class", "tags")
        checks = [
            (
                "label_smoothing",
                self.label_smoothing > 0,
                name == "cross_entropy",
                "it smooths the targets of cross_entropy (classification, ner); focal and the other losses take none",
            ),
            (
                "class_weights",
                self.class_weights != "none",
                single,
                "it weights the classes of classification or ner; multilabel has loss.pos_weight",
            ),
            (
                "beta",
                self.beta != defaults.beta,
                self.class_weights == "effective",
                "only class_weights effective uses it",
            ),
            ("gamma", self.gamma != defaults.gamma, name == "focal", "only name: focal uses it"),
            (
                "alpha",
                self.alpha is not None,
                name == "focal" and TASKS[task].target in ("class", "label set"),
                "only name: focal uses it, for binary classification or multilabel; for ner give class_weights",
            ),
            (
                "alpha",
                self.alpha is not None,
                self.class_weights == "none",
                "alpha and class_weights both weight the classes: give one of them",
            ),
            (
                "pos_weight",
                self.pos_weight != "none",
                name == "bce",
                "it weights the positives of multilabel bce; with focal use loss.alpha",
            ),
            ("huber_delta", self.huber_delta is not None, name == "huber", "only name: huber uses it"),
        ]
        for field, used, fits, why in checks:
            if used and not fits:
                return f"loss.{field} does not fit loss {name} of task {task}: {why}"
        return None

    def resolved(self, task: str, regression_loss: str = "mse") -> str:
        """The loss actually trained: `name`, or the task's usual one for "auto"."""
        if self.name != "auto":
            return self.name
        losses = TASKS[task].losses
        return regression_loss if TASKS[task].target == "number" else (losses[0] if losses else "auto")


class CausalOptions(_Section):
    """task: causal: supervised fine-tuning of a decoder (docs/causal.md)."""

    # What the rows hold: "auto" tells by the columns; prompt_completion (data.text_column and data.label_column),
    # instruction (instruction, input, output), messages (a chat in data.text_column or "messages"), text.
    format: Literal["auto", "prompt_completion", "instruction", "messages", "text"] = "auto"
    # A built-in chat template (chatml, llama3, zephyr) for chats; None: the tokenizer's own.
    chat_template: str | None = None
    # Learn the prompt's tokens too (the user turns of a chat); by default only completions and assistant turns.
    train_on_prompt: bool = False
    # Pack short examples into rows of training.max_length tokens (best fit; no attention across examples).
    packing: bool = True
    # Greedy generations scored (exact match, ROUGE-L) per evaluation split once training is over; 0: none.
    evaluation_generations: int = Field(default=200, ge=0)
    # The longest answer generated in evaluation and by predict.
    max_new_tokens: int = Field(default=64, gt=0)
    # QLoRA: load the decoder's weights in 4-bit NF4 (bitsandbytes, CUDA only) and train a peft method on them.
    load_in_4bit: bool = False


class FreezeOptions(_Section):
    """strategy: freeze. The head always trains."""

    embeddings: bool = True
    # Freeze the bottom k transformer layers; None: the bottom half.
    bottom_layers: int | None = Field(default=None, ge=0)
    # Train only the top k layers (and the head), freezing everything below; overrides bottom_layers.
    top_layers: int | None = Field(default=None, ge=0)


class GradualOptions(_Section):
    """strategy: gradual. The head and the top layer train first; one more layer joins at each stage."""

    # A new stage every this many optimizer steps; None: at the start of each epoch.
    every_steps: int | None = Field(default=None, gt=0)


class LayerDecayOptions(_Section):
    """strategy: llrd. The head and the top layer learn at learning_rate, each layer below at `decay`
    times the rate of the one above it, and the embeddings at `decay` times the bottom layer's."""

    decay: float = Field(default=0.8, gt=0, le=1)


class LoraOptions(_Section):
    rank: int = Field(default=8, gt=0)
    alpha: int = Field(default=16, gt=0)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    # Module names to adapt; None: every linear layer of the attention and feed-forward blocks.
    target_modules: list[str] | None = None
    # DoRA: each adapted weight also learns a magnitude per output, apart from its direction.
    use_dora: bool = False
    # Also train biases: "all" of the model's, or only those of the adapted layers (BitFit on top).
    bias: Literal["none", "all", "lora_only"] = "none"
    # Also write model/ with the adapter merged in, loadable by plain transformers.
    merge: bool = True


class AdaLoraOptions(_Section):
    initial_rank: int = Field(default=12, gt=0)
    target_rank: int = Field(default=8, gt=0)
    alpha: int = Field(default=16, gt=0)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    target_modules: list[str] | None = None
    # Fractions of the run spent before rank pruning starts and after it ends.
    warmup_fraction: float = Field(default=0.1, ge=0, lt=1)
    final_fraction: float = Field(default=0.3, ge=0, lt=1)
    merge: bool = True


class Ia3Options(_Section):
    # None: peft's defaults for the architecture (keys, values and the feed-forward output).
    target_modules: list[str] | None = None
    feedforward_modules: list[str] | None = None
    merge: bool = True


class PromptOptions(_Section):
    """strategy: prefix, prompt or ptuning: trained virtual tokens before the input."""

    virtual_tokens: int = Field(default=20, gt=0)
    # ptuning: the hidden size of the prompt encoder; prefix: of the reparametrising MLP (None: none).
    encoder_hidden_size: int | None = Field(default=None, gt=0)
    # prompt: start the virtual tokens from this text's embeddings instead of random ones.
    init_text: str | None = None


class AdapterOptions(_Section):
    """strategy: adapter: small bottleneck layers inside each transformer layer; the rest frozen."""

    # houlsby: after attention and after the feed-forward block; pfeiffer: after the feed-forward block only.
    kind: Literal["houlsby", "pfeiffer"] = "houlsby"
    # Bottleneck width = hidden size / reduction_factor.
    reduction_factor: int = Field(default=16, gt=0)
    # Regular expressions for the linear layers whose output an adapter refines; None: per architecture.
    target_modules: list[str] | None = None


def label_keys_as_text(value: object) -> object:
    # YAML reads the label 1 in `1: great` as a number; labels are compared as text (tasks/vocabulary.py).
    return {str(key): item for key, item in value.items()} if isinstance(value, dict) else value


MethodName = Literal["finetune", "zero_shot", "contrastive", "cloze"]
METHODS: tuple[str, ...] = MethodName.__args__


class ZeroShotOptions(_Section):
    """method: zero_shot. A text gets the label whose prompts' embedding is closest (cosine)."""

    # Each label's prompts: these with {label} replaced by its description (or its name); embeddings averaged.
    templates: list[str] = Field(default_factory=lambda: ["This text is about {label}."], min_length=1)
    # Label name -> the words that stand for it in the prompts ("Sci/Tech": "science and technology").
    descriptions: dict[str, str] | None = None
    # Probabilities are softmax(cosine / temperature); the predicted label does not depend on it.
    temperature: float = Field(default=0.05, gt=0)

    @field_validator("descriptions", mode="before")
    @classmethod
    def _names_as_text(cls, value: object) -> object:
        return label_keys_as_text(value)

    @field_validator("templates")
    @classmethod
    def _placeholder(cls, templates: list[str]) -> list[str]:
        for template in templates:
            if "{label}" not in template:
                raise ValueError(
                    f"template {brief(template)} has no {{label}} placeholder, so every label gets it alike"
                )
        return templates


class ContrastiveOptions(_Section):
    """method: contrastive (SetFit's recipe). The encoder trains on the pairs of each batch, then a head fits."""

    # Passes over the few examples; each step embeds one batch and scores all of its pairs.
    epochs: int = Field(default=10, gt=0)
    max_steps: int | None = Field(default=None, gt=0)
    batch_size: int = Field(default=16, ge=2)
    learning_rate: float = Field(default=5e-5, gt=0)
    warmup_ratio: float = Field(default=0.1, ge=0, le=1)
    # Inverse regularisation strength C of the logistic-regression head (scikit-learn's default, 1.0).
    head_c: float = Field(default=1.0, gt=0)


class ClozeOptions(_Section):
    """method: cloze (PET / LM-BFF): the label is the word a masked-LM head predicts in a template."""

    # {text} is replaced by the text, {mask} by the tokenizer's mask token.
    template: str = "{text} It was {mask}."
    # Label name -> the one-token word that stands for it at the mask ("1": great, "0": terrible).
    verbalizer: dict[str, str] | None = None

    @field_validator("verbalizer", mode="before")
    @classmethod
    def _names_as_text(cls, value: object) -> object:
        return label_keys_as_text(value)

    @field_validator("template")
    @classmethod
    def _placeholders(cls, template: str) -> str:
        for placeholder in ("{text}", "{mask}"):
            if template.count(placeholder) != 1:
                raise ValueError(f"template {brief(template)} must hold {placeholder} exactly once")
        return template


class SearchRange(_Section):
    """One searched key: a range (low to high, `log` for rates) or a list of choices."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    # A whole number range (batch sizes, ranks) when low and high are both integers.
    integer: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _range_or_choices(self) -> SearchRange:
        ranged = self.low is not None and self.high is not None
        if ranged == (self.choices is not None) or (self.choices is not None and not self.choices):
            raise ValueError("give either low and high, or a non-empty list of choices")
        if ranged and not self.low < self.high:
            raise ValueError("low must be below high")
        if self.log and ranged and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


class SearchOptions(_Section):
    """`tunesmith search`: what to vary and what to maximise."""

    # Dotted config keys and their ranges; empty: learning rate, batch size, warm-up and
    # weight decay (and the LoRA rank under strategy: lora).
    space: dict[str, SearchRange] = {}
    # The validation metric to optimise; None: training.metric_for_best, else the task's main metric.
    metric: str | None = None
    # Stop a trial whose validation score falls below the median of earlier trials at the same step.
    prune: bool = True


DoctorCheck = Literal[CHECKS]  # type: ignore[valid-type]


class DoctorOptions(_Section):
    """The data doctor (`tunesmith doctor`, and before every `train`): see docs/doctor.md."""

    # Examine the data before training; the findings are logged and saved as doctor.json/.md in the run folder.
    enabled: bool = True
    # Checks whose findings stop `train` before anything is written (errors always do).
    fail_on: list[DoctorCheck] = []
    # An input with fewer visible characters than this is reported as short.
    min_characters: int = Field(default=3, ge=1)
    # Look for likely label errors before `train` too (classification): cleanlab on the out-of-fold
    # probabilities of a logistic regression on the backbone's frozen embeddings. `tunesmith doctor`
    # looks unless told --no-label-errors; before training it costs a minute, so it is off.
    label_errors: bool = False
    # Examine at most this many training rows for label errors (a seeded sample): the embeddings cost.
    label_error_rows: int = Field(default=4000, ge=20)
    # Folds of the cross-validation that gives every examined row a probability from a model that never saw it.
    label_error_folds: int = Field(default=5, ge=2)
    # How many of the most suspicious rows doctor.md and doctor.json list.
    label_errors_listed: int = Field(default=20, ge=1)


class ReportOptions(_Section):
    """What the end of a run measures for report.md beyond the run's own scores: see README, "The report"."""

    # Score the majority class (mean target), a TF-IDF + logistic (ridge) regression and the pretrained
    # model before fine-tuning (a linear probe on its frozen embeddings; zero-shot for sentence encoders)
    # on the same splits (classification and regression), in metrics.json and report.md. true: all that
    # apply; false: none; or a list of constant, tfidf, probe, zero_shot.
    baselines: bool | list[Literal["constant", "tfidf", "probe", "zero_shot"]] = True
    # Fit the TF-IDF baseline on at most this many training rows (a seeded sample): time stays bounded.
    baseline_rows: int = Field(default=100_000, ge=10)
    # Fit the linear probe on at most this many training rows (a seeded sample): each costs a forward pass.
    probe_rows: int = Field(default=2000, ge=10)
    # Which report the run writes: report.md, a self-contained report.html (figures inlined), or both.
    format: Literal["md", "html", "both"] = "md"
    # Explain this many of the worst validation errors (integrated gradients, as `tunesmith explain`) in
    # report.md: the most confident mistakes of classification, the largest errors of regression.
    explained_errors: int = Field(default=3, ge=0)


class AdversarialOptions(_Section):
    """Adversarial training on the word embeddings (train/adversarial.py, docs/adversarial.md)."""

    # fgm: one step of size epsilon; pgd: `steps` ascent steps of `alpha` kept within epsilon, trained on the last;
    # freelb: `steps` ascent steps on each example's embeddings, trained on the mean of their gradients.
    method: Literal["none", "fgm", "pgd", "freelb"] = "none"
    # Size of the perturbation: its norm over the batch's word-embedding rows (fgm, pgd), or over each
    # example's embedded tokens (freelb).
    epsilon: float = Field(default=1.0, gt=0)
    # Step size of each ascent step (pgd, freelb).
    alpha: float = Field(default=0.3, gt=0)
    # Ascent steps: pgd's extra passes, freelb's passes in all (the clean one included).
    steps: int = Field(default=3, ge=1)
    # l2: steps along the normalised gradient, kept in an L2 ball; linf: along its sign, kept in a box.
    norm: Literal["l2", "linf"] = "l2"


class RDropOptions(_Section):
    """R-Drop (train/rdrop.py): two dropout passes, both trained, and their outputs pulled together."""

    # Weight of the symmetric KL divergence between the two passes' predictions; 0: off.
    alpha: float = Field(default=0.0, ge=0)


class ContinualOptions(_Section):
    """Fine-tune a finished run on a new task or new data, limiting what it forgets (docs/continual.md)."""

    # The finished fine-tuning run to continue from: its encoder (and head, for the same labels) start this run,
    # and its task is scored before and after on its own validation (else test) data.
    from_run: Path | None = None
    # Old training examples mixed into every step: a fraction (below 1) of the old run's training rows, or a number.
    replay: float = Field(default=0.0, ge=0)
    # EWC: (ewc / 2) * sum F * (w - w_old)^2, F the Fisher diagonal on the old training data. 0: off.
    ewc: float = Field(default=0.0, ge=0)
    # The old training examples (a seeded sample) the Fisher diagonal is estimated on.
    ewc_examples: int = Field(default=500, gt=0)
    # L2-SP toward the old run's weights (its head too when kept): (l2sp / 2) * ||w - w_old||^2. 0: off.
    l2sp: float = Field(default=0.0, ge=0)
    # The old head and labels: "keep" (same task, new data: the label sets must agree), "new" (a new task gets a
    # new head), "auto" (keep when the task and its labels are the old run's).
    head: Literal["auto", "keep", "new"] = "auto"

    @field_validator("replay")
    @classmethod
    def _whole_number_or_fraction(cls, value: float) -> float:
        if value >= 1 and value != int(value):
            raise ValueError("give a fraction below 1 of the old training rows, or a whole number of them")
        return value

    @model_validator(mode="after")
    def _methods_need_an_old_run(self) -> ContinualOptions:
        used = [key for key in ("replay", "ewc", "l2sp") if getattr(self, key)]
        if used and self.from_run is None:
            raise ValueError(f"{' and '.join(used)} need an old run to protect: set from_run to that run's folder")
        return self


AugmentOperation = Literal["swap", "delete", "insert", "synonym", "cutoff", "entity"]


class AugmentationOptions(_Section):
    """New training rows made by editing the training texts (docs/augmentation.md); other splits never."""

    # The edits, one drawn at random for each new row: swap, delete, insert (a synonym), synonym
    # (replacement), cutoff (a span of words) for text tasks; entity (mention replacement) for NER. Empty: none.
    operations: list[AugmentOperation] = []
    # EDA's alpha: the share of a text's words an edit touches (at least one); for entity, of its mentions.
    alpha: float = Field(default=0.1, gt=0, le=1)
    # New rows made from each training row (a copy identical to its row is left out).
    copies: int = Field(default=1, gt=0, le=64)
    # None: training.seed.
    seed: int | None = None
    # Sentence pairs: edit both texts, each on its own, or only the first.
    pair_texts: Literal["both", "first"] = "both"

    @field_validator("operations")
    @classmethod
    def _each_once(cls, operations: list[str]) -> list[str]:
        if len(set(operations)) != len(operations):
            raise ValueError("names an operation twice: give each once (new rows draw among them evenly)")
        return operations


class RunConfig(_Section):
    """Everything one run needs; saved fully resolved as <run>/config.yaml."""

    name: str | None = None
    # "minilm" (bundled, offline), a local folder, or a Hugging Face model id.
    model: str = "minilm"
    task: TaskName = "classification"
    # How the model learns: fine-tuning a task head, zero-shot label prompts, or few-shot contrastive
    # tuning of a sentence encoder (docs/little-data.md).
    method: MethodName = "finetune"
    # Which parameters train: see docs/strategies.md.
    strategy: StrategyName = "full"
    output_dir: Path | None = None
    data: DataConfig
    training: TrainingConfig = TrainingConfig()
    regularization: RegularizationConfig = RegularizationConfig()
    classification: ClassificationOptions = ClassificationOptions()
    regression: RegressionOptions = RegressionOptions()
    multilabel: MultiLabelOptions = MultiLabelOptions()
    ner: NerOptions = NerOptions()
    causal: CausalOptions = CausalOptions()
    loss: LossOptions = LossOptions()
    freeze: FreezeOptions = FreezeOptions()
    gradual: GradualOptions = GradualOptions()
    llrd: LayerDecayOptions = LayerDecayOptions()
    lora: LoraOptions = LoraOptions()
    adalora: AdaLoraOptions = AdaLoraOptions()
    ia3: Ia3Options = Ia3Options()
    prefix: PromptOptions = PromptOptions()
    prompt: PromptOptions = PromptOptions()
    ptuning: PromptOptions = PromptOptions(encoder_hidden_size=128)
    adapter: AdapterOptions = AdapterOptions()
    search: SearchOptions = SearchOptions()
    doctor: DoctorOptions = DoctorOptions()
    zero_shot: ZeroShotOptions = ZeroShotOptions()
    contrastive: ContrastiveOptions = ContrastiveOptions()
    cloze: ClozeOptions = ClozeOptions()
    report: ReportOptions = ReportOptions()
    adversarial: AdversarialOptions = AdversarialOptions()
    rdrop: RDropOptions = RDropOptions()
    continual: ContinualOptions = ContinualOptions()
    augmentation: AugmentationOptions = AugmentationOptions()
    # Trackers fed the history records as training writes them (train/tracking.py); none by default.
    tracking: list[Literal["tensorboard", "wandb", "mlflow"]] = []

    @model_validator(mode="before")
    @classmethod
    def _strategy_learning_rate(cls, raw: Any) -> Any:
        # Filled in before validation, so the saved config holds the rate actually used.
        if not isinstance(raw, dict) or raw.get("strategy", "full") not in DEFAULT_LEARNING_RATES:
            return raw
        training = raw.get("training", {})
        if not isinstance(training, dict) or training.get("learning_rate") is not None:
            return raw
        rate = DEFAULT_LEARNING_RATES[raw.get("strategy", "full")]
        return {**raw, "training": {**training, "learning_rate": rate}}

    @model_validator(mode="before")
    @classmethod
    def _task_default_columns(cls, raw: Any) -> Any:
        # Filled in before validation so the saved config names the columns actually read.
        if not isinstance(raw, dict) or not isinstance(raw.get("data"), dict):
            return raw
        # NER reads token lists and tag lists; the other tasks keep DataConfig's own defaults.
        task = raw.get("task", "classification")
        info = TASKS.get(task) if isinstance(task, str) else None
        if info is None or not info.default_columns:
            return raw
        data = dict(raw["data"])
        for key, column in info.default_columns.items():
            data[key] = data.get(key) or column
        return {**raw, "data": data}

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str | None, info: ValidationInfo) -> str | None:
        # A run folder's own config.yaml may hold a name from before names were checked: it still loads.
        if name is None or (info.context or {}).get("saved"):
            return name
        problem = name_problem(name)
        if problem:
            raise ValueError(f"{brief(name)} {problem}. {NAME_HINT}")
        return name

    @model_validator(mode="after")
    def _four_bits_under_an_adapter(self) -> RunConfig:
        generative = TASKS[self.task].generative
        if self.causal.load_in_4bit and (not generative or self.strategy not in ("lora", "adalora", "ia3")):
            raise ValueError(
                "causal.load_in_4bit (QLoRA) trains an adapter on frozen 4-bit weights: use it with task causal "
                "and strategy lora, adalora or ia3"
            )
        return self

    @model_validator(mode="after")
    def _no_virtual_tokens_for_generation(self) -> RunConfig:
        # peft 0.21.2's generate with virtual tokens fails under transformers 5.25 (its positions overrun the
        # cache), and packed examples would not each see tokens put once before a row.
        if TASKS[self.task].generative and self.strategy in ("prefix", "prompt", "ptuning"):
            raise ValueError(
                f"strategy {self.strategy} cannot fine-tune task causal yet (peft's generation with virtual tokens "
                "fails under this transformers release): use lora, ia3, bitfit, freeze or full"
            )
        return self

    @model_validator(mode="after")
    def _loss_fits_task(self) -> RunConfig:
        problem = self.loss.problem(self.task, self.method, self.regression.loss)
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _pairs_swapped_only_for_text_tasks(self) -> RunConfig:
        for option in ("swap_pairs", "average_pair_orders"):
            if TASKS[self.task].token_level and getattr(self.data, option):
                raise ValueError(
                    f"data.{option} swaps the texts of a pair; task {self.task} tags one token sequence: drop it"
                )
        return self

    @model_validator(mode="after")
    def _augmentation_fits_the_task(self) -> RunConfig:
        operations = self.augmentation.operations
        if not operations:
            return self
        info = TASKS[self.task]
        if info.generative or self.method != "finetune":
            raise ValueError(
                f"augmentation edits the training rows of method finetune on encoder tasks; task {self.task} with "
                f"method {self.method} takes none: drop augmentation.operations"
            )
        if info.token_level and operations != ["entity"]:
            raise ValueError(
                f"task {self.task} tags every token, and word edits would misalign the tags: use "
                "augmentation.operations: [entity] (mention replacement keeps them aligned)"
            )
        if not info.token_level and "entity" in operations:
            raise ValueError(
                f"augmentation operation entity replaces tagged mentions; task {self.task} has no tags: use "
                "swap, delete, insert, synonym or cutoff"
            )
        return self

    @model_validator(mode="after")
    def _sentence_methods_classify_single_texts(self) -> RunConfig:
        if self.data.shots_per_class is not None and TASKS[self.task].target != "class":
            raise ValueError(
                f"data.shots_per_class draws examples per class; task {self.task} has no class per example"
            )
        if self.method == "finetune":
            return self
        if TASKS[self.task].target != "class":
            raise ValueError(f"method {self.method} classifies single texts: set task: classification, or drop method")
        if self.data.text_pair_column is not None:
            raise ValueError(
                f"method {self.method} embeds single texts, not pairs: drop data.text_pair_column, "
                "or use method finetune"
            )
        if self.strategy != "full":
            raise ValueError(f"strategy {self.strategy} applies to method finetune; method {self.method} takes none")
        if self.method == "cloze" and not self.cloze.verbalizer:
            raise ValueError("method cloze needs cloze.verbalizer: one word per label, e.g. {1: great, 0: terrible}")
        return self

    @model_validator(mode="after")
    def _rdrop_compares_distributions(self) -> RunConfig:
        info = TASKS[self.task]
        if self.rdrop.alpha > 0 and (info.token_level or info.target not in ("class", "label set")):
            raise ValueError(
                f"rdrop.alpha compares the class (or label) probabilities of two passes; task {self.task} has none: "
                "set rdrop.alpha: 0, or use task classification or multilabel"
            )
        return self

    @model_validator(mode="after")
    def _training_options_for_finetune(self) -> RunConfig:
        # The other methods train with their own fixed recipe (AdamW, linear warm-up by ratio, the model's dropout).
        if self.method == "finetune":
            return self
        training = self.training
        given = [f"regularization.{name}" for name in self.regularization.overrides] + [
            f"training.{name}"
            for name, value in (("optimizer", "adamw"), ("scheduler", "linear"), ("warmup_steps", None))
            if getattr(training, name) != value
        ]
        given += ["adversarial.method"] if self.adversarial.method != "none" else []
        given += ["rdrop.alpha"] if self.rdrop.alpha > 0 else []
        given += ["regularization.l2sp"] if self.regularization.l2sp else []
        if given:
            raise ValueError(f"{', '.join(given)} apply to method finetune; method {self.method} takes none: drop them")
        return self

    @model_validator(mode="after")
    def _continual_trains_whole_models(self) -> RunConfig:
        if self.continual.from_run is None:
            return self
        if self.method != "finetune" or self.strategy not in CONTINUAL_STRATEGIES:
            what = f"method {self.method}" if self.method != "finetune" else f"strategy {self.strategy}"
            raise ValueError(
                f"continual.from_run continues a run's whole model; {what} does not train one: use method finetune "
                f"with strategy {', '.join(CONTINUAL_STRATEGIES)}"
            )
        return self

    def run_name(self) -> str:
        if self.name:
            return self.name
        train = self.data.train
        stem = train.stem if train.suffix else train.name
        parent = train.parent.name
        name = f"{parent}-{stem}" if parent and stem in {"train", "data"} else stem
        # `--data .` or `--data ..` (a saved dataset): named after that folder, not runs/ or its parent.
        return (train.resolve().name or "run") if name in {"", ".", ".."} else name

    def run_dir(self) -> Path:
        if self.output_dir is not None:
            return self.output_dir
        name = self.run_name()
        # Checked here too: a RunConfig built with model_copy or model_construct skips the validator.
        problem = name_problem(name)
        if problem:
            raise UserError(f"Run name {brief(name)} {problem}. {NAME_HINT}")
        return Path("runs") / name

    def resolved(self) -> RunConfig:
        """A copy with the name, output folder and data paths filled in and absolute."""
        paths = {
            split: getattr(self.data, split).resolve()
            for split in ("train", "validation", "test")
            if getattr(self.data, split) is not None
        }
        if isinstance(self.data.label_names, Path):
            paths["label_names"] = self.data.label_names.resolve()
        data = self.data.model_copy(update=paths)
        update: dict[str, Any] = {"name": self.run_name(), "output_dir": self.run_dir(), "data": data}
        if self.continual.from_run is not None:
            update["continual"] = self.continual.model_copy(update={"from_run": self.continual.from_run.resolve()})
        return self.model_copy(update=update)


NAME_HINT = (
    "A run name is a plain folder name, runs/<name>: give a path as output_dir: (or --output-dir) instead, "
    "or choose a name such as sst2-lora"
)


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a folder inside runs/, or None when it can."""
    if name in {".", ".."}:
        return f"names {'runs/ itself' if name == '.' else 'the folder above runs/'}, not a folder inside it"
    if "/" in name or "\\" in name:
        return "holds a path separator (/ or \\), which makes it a path, not a name"
    if any(unicodedata.category(char) == "Cc" for char in name):
        return "holds a control character (such as a NUL byte or a line break)"
    return None


def load_config(
    path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    assignments: list[str] | None = None,
) -> RunConfig:
    """Build a RunConfig from a YAML file, then flag values, then key=value assignments."""
    raw: dict[str, Any] = read_yaml(path) if path is not None else {}
    for key, value in (overrides or {}).items():
        set_dotted(raw, key, value)
    for assignment in assignments or []:
        key, value = parse_assignment(assignment)
        set_dotted(raw, key, value)
    source = str(path) if path is not None else "the command line"
    return validate_config(raw, source)


def validate_config(raw: dict[str, Any], source: str, saved: bool = False) -> RunConfig:
    """`saved`: the config.yaml of a run folder, whose name may be from before names were checked."""
    return validate_schema(RunConfig, raw, source, saved)


def validate_schema(schema: type[Schema], raw: dict[str, Any], source: str, saved: bool = False) -> Schema:
    """`raw` as a `schema` (RunConfig, PretrainConfig), or a UserError naming the keys that are wrong."""
    try:
        return schema.model_validate(raw, context={"saved": saved})
    except ValidationError as exc:
        errors = exc.errors()
        # A few problems at a time: a value built from YAML aliases can fail in thousands of places.
        problems = [_describe(error, schema) for error in errors[:MAX_PROBLEMS]]
        if len(errors) > MAX_PROBLEMS:
            problems.append(f"... and {len(errors) - MAX_PROBLEMS} more.")
        raise UserError(f"Invalid config in {source}: " + " ".join(problems)) from None


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"Config file {path} does not exist. Check the path, or pass the data with --data FILE.")
    try:
        text = path.read_text(encoding="utf-8-sig")
        loaded = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except UnicodeDecodeError as exc:
        raise UserError(f"Config file {path} is not UTF-8 text ({exc.reason}). Save it as UTF-8.") from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise UserError(
            f"Config file {path}, line {line}: not valid YAML (character {exc.character!r} is not allowed). "
            "Remove it; a config holds plain text only."
        ) from None
    except RecursionError:
        raise UserError(
            f"Config file {path}: not valid YAML for a config (values nested too deep). "
            "A config nests a few levels at most: model:, data:, training: and their keys."
        ) from None
    except (ValueError, IndexError, KeyError, AttributeError, TypeError) as exc:
        # PyYAML's constructors raise these for values such as 2024-02-30 or an empty !!int.
        raise UserError(
            f"Config file {path}: not valid YAML ({exc}). Quote the value if it is meant as text."
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and start:
            problem += f"; {context} that starts at line {start.line + 1}"
        raise UserError(
            f"Config file {path}{at}: not valid YAML ({problem}). Check the indentation and quoting there."
        ) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UserError(
            f"Config file {path} must hold a mapping of keys (model:, data:, training: ...), "
            f"not a {type(loaded).__name__}."
        )
    return loaded


def parse_assignment(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f'Override "{text}" is not of the form key=value (e.g. training.epochs=2).')
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except (yaml.YAMLError, ValueError, IndexError, KeyError, AttributeError, TypeError, RecursionError):
        # Not YAML (or an impossible date such as 2024-02-30): the text itself is the value.
        parsed = value
    return key.strip(), parsed


def set_dotted(tree: dict[str, Any], dotted_key: str, value: Any) -> None:
    *parents, leaf = dotted_key.split(".")
    node = tree
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UserError(f'Cannot set "{dotted_key}": "{part}" is a value, not a section.')
        node = child
    node[leaf] = value


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice, which plain YAML resolves by silently dropping the first."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, IndexError, KeyError, AttributeError, TypeError) as exc:
            # PyYAML's constructors raise these for values such as 2024-02-30 or an empty !!int;
            # as a ConstructorError they carry the line and column.
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {node.value!r} ({exc}); quote it if it is meant as text", node.start_mark
            ) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value if isinstance(node, yaml.MappingNode) else []:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f'"{key}" appears twice (first on line {seen[key] + 1}); the first would be ignored. '
                    "Merge the two into one",
                    key_node.start_mark,
                )
            if isinstance(key, (str, int, float, bool)):
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _describe(error: dict[str, Any], schema: type[BaseModel]) -> str:
    location = _field_path(error["loc"], schema)
    dotted = ".".join(location) or "(top level)"
    if error["type"] == "extra_forbidden":
        valid = sorted(_fields_at(location[:-1], schema))
        guess = difflib.get_close_matches(location[-1], valid, n=1)
        hint = f' Did you mean "{guess[0]}"?' if guess else ""
        return f'Unknown key "{dotted}".{hint} Valid keys here: {", ".join(valid)}.'
    if error["type"] == "missing":
        hint = " It needs at least data.train, the training file (or pass --data FILE)." if dotted == "data" else ""
        return f'Missing required key "{dotted}".{hint}'
    given = error.get("input")
    # Shortened: an input built from YAML aliases can expand to billions of items.
    shown = "" if isinstance(given, dict) else f" (got {brief(given)})"
    return f'"{dotted}": {error["msg"]}{shown}.'


def _field_path(loc: tuple[Any, ...], schema: type[BaseModel]) -> list[str]:
    """The config keys of an error location, without the union branch names pydantic adds ("list[str]")."""
    model: type[BaseModel] | None = schema
    path = []
    for position, part in enumerate(loc):
        if model is not None and part in model.model_fields:
            path.append(part)
            annotation = model.model_fields[part].annotation
            model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
        elif (model is not None and position == len(loc) - 1) or isinstance(part, int):
            path.append(str(part))  # an unknown key, or an index into a list
    return path


def _fields_at(location: list[str], schema: type[BaseModel]) -> set[str]:
    model: type[BaseModel] = schema
    for part in location:
        annotation = model.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return set()
        model = annotation
    return set(model.model_fields)
