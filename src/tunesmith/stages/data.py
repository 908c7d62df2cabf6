"""Data: read the files into splits and encode their labels, then tokenize.

`read_data` (`load_data`, then `encode_data`) checks the data (columns, labels, the metric
the labels allow) and writes nothing, so that it runs before the run folder exists. The
splits as read, before encoding, are what the data doctor examines (stages/doctor.py).
`augment_train` adds the configured augmentation's rows to train (after the doctor has seen the
data as read). `tokenize_splits` fills the tokenization cache; one process writes it and the others read it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tunesmith.config import RunConfig
from tunesmith.data import augment
from tunesmith.data.splits import LoadedData, load_splits
from tunesmith.errors import UserError
from tunesmith.tasks import reading_options
from tunesmith.tasks.encoding import check_readable
from tunesmith.tasks.protocol import Task

if TYPE_CHECKING:
    import datasets

    from tunesmith.stages.plan import Plan

logger = logging.getLogger(__name__)

EVALUATION_SPLITS = ("validation", "test")


@dataclass
class TokenizedData:
    """Model inputs per split, and the evaluation splits' pairs in the other order (to average both)."""

    splits: dict[str, datasets.Dataset]
    swapped: dict[str, datasets.Dataset] = field(default_factory=dict)


def read_data(plan: Plan) -> dict[str, datasets.Dataset]:
    """train, validation and test, each with a checked `labels` column of model targets."""
    return encode_data(plan, load_data(plan))


def load_data(plan: Plan) -> LoadedData:
    """The splits as read (labels as written), carved and subsampled as configured."""
    cfg = plan.cfg
    return load_splits(cfg.data, cfg.training.seed, **reading_options(cfg))


def encode_data(plan: Plan, data: LoadedData) -> dict[str, datasets.Dataset]:
    """Each split with a checked `labels` column of model targets, the task's labels fitted on train.

    Every text must give the model at least one token (`check_readable`).
    """
    cfg, task = plan.cfg, plan.task
    task.fit_labels(data.splits["train"], data.sources["train"])
    check_metric(cfg, task)
    if task.info.generative:
        # The chat template the rows need, found (or refused) before the run folder exists, and before
        # `encode` renders each chat with it.
        task.prepare_tokenizer(plan.tokenizer)
    splits = {name: task.encode(split, data.sources[name]) for name, split in data.splits.items()}
    if task.info.generative:  # prompts, chats and texts were checked as read (causal/rows.py) and above
        return splits
    # The labels first: their checks are quick, tokenizing every text is not.
    for source in dict.fromkeys(data.sources.values()):
        check_readable(
            [split for name, split in splits.items() if data.sources[name] == source],
            plan.tokenizer,
            source,
            text_columns(cfg),
            cfg.training.max_length,
            cfg.training.truncation_side,
            warn=plan.accelerator.is_main_process,
        )
    if cfg.data.swap_pairs:
        splits["train"] = augment.swap_pairs(splits["train"])
    return splits


def augment_train(plan: Plan, splits: dict[str, datasets.Dataset]) -> dict[str, datasets.Dataset]:
    """The splits with train followed by the augmentation's new rows (augmentation.operations); the
    evaluation splits as they were. Nothing changes when no operation is configured."""
    options = plan.cfg.augmentation
    if not options.operations:
        return splits
    # Here, not at the top: the edits read scikit-learn's stop words, which a run without augmentation never loads.
    from tunesmith.data.augment import apply as augmentation
    from tunesmith.data.augment.lexicon import wordnet_synonyms

    seed = plan.cfg.training.seed if options.seed is None else options.seed
    recipe = augmentation.Plan(list(options.operations), options.alpha, options.copies, seed, options.pair_texts)
    train = splits["train"]
    if plan.task.info.token_level:
        augmented = augmentation.augment_entities(train, recipe, plan.task.names)
    else:
        lexical = [name for name in options.operations if name in augmentation.LEXICAL_OPERATIONS]
        synonyms = wordnet_synonyms(lexical[0]) if lexical else None
        augmented = augmentation.augment_texts(train, recipe, synonyms)
    if plan.accelerator.is_main_process:
        logger.info(
            "Augmentation (%s): %d new training rows from %d.",
            ", ".join(options.operations),
            len(augmented) - len(train),
            len(train),
        )
    return {**splits, "train": augmented}


def text_columns(cfg: RunConfig) -> dict[str, str]:
    """The splits' text columns and the names they have in the data files."""
    columns = {"text": cfg.data.text_column}
    if cfg.data.text_pair_column:
        columns["text_pair"] = cfg.data.text_pair_column
    return columns


def check_metric(cfg: RunConfig, task: Task) -> None:
    wanted = cfg.training.metric_for_best
    if wanted is not None and wanted not in task.metric_names:
        raise UserError(
            f'training.metric_for_best "{wanted}" is not a {cfg.task} metric. '
            f"Choose one of: {', '.join(task.metric_names)}."
        )


def tokenize_splits(plan: Plan, splits: dict[str, datasets.Dataset]) -> TokenizedData:
    tokenized = TokenizedData({})
    with plan.accelerator.main_process_first():
        for name, split in splits.items():
            encoded, swapped = tokenize_split(plan.cfg, plan.task, plan.tokenizer, split, training=name == "train")
            tokenized.splits[name] = encoded
            if swapped is not None and name in EVALUATION_SPLITS:
                tokenized.swapped[name] = swapped
    return tokenized


def tokenize_split(
    cfg: RunConfig, task: Task, tokenizer: Any, split: datasets.Dataset, training: bool
) -> tuple[datasets.Dataset, datasets.Dataset | None]:
    """One split's model inputs; for evaluation with `data.average_pair_orders`, also the pairs swapped."""
    encoded = task.tokenize(split, tokenizer, training)
    if training or not cfg.data.average_pair_orders:
        return encoded, None
    return encoded, task.tokenize(augment.swapped(split), tokenizer, False)
