"""The parity gate: the export must score real validation examples as the trained model does.

Both models see the same batches of the run's validation split (or `--data`), through the
evaluation loader training used. The gate records the largest difference of any logit, how
often the two make the same decision, and the task's metric with each; an export beyond the
limits is refused. Agreement is over decisions: the class (classification), each label's
on/off (multi-label), each scored word's tag (NER); a regression has no decision, and its
logit difference and metric carry the gate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tunesmith.errors import UserError

if TYPE_CHECKING:
    import datasets

    from tunesmith.predictor import Predictor

IGNORE = -100


@dataclass(frozen=True)
class Gate:
    """Limits an export must keep to; None: not checked."""

    max_logit_diff: float | None
    min_agreement: float | None
    # In the metric's own units: 0.01 is one point of accuracy.
    max_metric_drop: float | None

    @classmethod
    def default(cls, quantized: bool) -> Gate:
        # fp32 ONNX and a merged model compute the same function: differences are rounding (1e-5).
        # int8 moves logits by design (tenths on MiniLM); its decisions and metric are what must hold.
        if quantized:
            return cls(max_logit_diff=None, min_agreement=0.97, max_metric_drop=0.01)
        return cls(max_logit_diff=1e-3, min_agreement=0.999, max_metric_drop=0.001)

    def with_overrides(self, **given: float | None) -> Gate:
        return Gate(**{**asdict(self), **{key: value for key, value in given.items() if value is not None}})


@dataclass
class Scored:
    logits: list[torch.Tensor]
    targets: list[torch.Tensor]


def validation_data(predictor: Predictor, data: Path | None, limit: int) -> datasets.Dataset:
    """Up to `limit` labelled examples: `data`, else the run's validation split (else its test split)."""
    from tunesmith.data.splits import load_splits, read_labelled
    from tunesmith.tasks import reading_options

    config = predictor.config
    options = reading_options(config)
    if data is not None:
        split, source = read_labelled(Path(data), config.data, **options), Path(data)
    else:
        try:
            loaded = load_splits(config.data, config.training.seed, **options)
        except UserError as exc:
            raise UserError(
                f"The parity gate re-scores the run's validation data, which cannot be read here: {exc} "
                "Give a labelled file with --data."
            ) from None
        name = next((name for name in ("validation", "test") if name in loaded.splits), None)
        if name is None:
            raise UserError("The run has no validation or test split to check the export on: give one with --data.")
        split, source = loaded.splits[name], loaded.sources[name]
    split = split.select(range(min(limit, len(split))))
    return predictor.task.encode(split, source)


def score(predictor: Predictor, labelled: datasets.Dataset, batch_size: int = 32) -> Scored:
    """Logits and targets of every batch, as the evaluation loop computes them (pairs in both orders averaged)."""
    from tunesmith.stages.data import tokenize_split
    from tunesmith.train.batching import eval_loader

    task, model = predictor.task, predictor.model
    encoded, swapped = tokenize_split(predictor.config, task, predictor.tokenizer, labelled, training=False)
    loader = eval_loader(encoded, task.collator(predictor.tokenizer), batch_size, swapped=swapped)
    scored = Scored([], [])
    with torch.no_grad():
        for batch in loader:
            batch, other = batch if isinstance(batch, tuple) else (batch, None)
            targets = batch.pop("labels")
            logits = model(**batch).logits.float()
            if other is not None:
                other.pop("labels")
                logits = (logits + model(**other).logits.float()) / 2
            scored.logits.append(logits.cpu())
            scored.targets.append(targets)
    return scored


def compare(predictor: Predictor, reference: Scored, candidate: Scored) -> dict[str, Any]:
    """max |Δlogit|, agreement and the task metric, reference (before) and candidate (after)."""
    task = predictor.task
    largest = 0.0
    decided: list[np.ndarray] = []
    for ours, theirs, targets in zip(reference.logits, candidate.logits, reference.targets, strict=True):
        difference = (ours - theirs).abs()
        if difference.dim() == 3:  # token-level: only the scored tokens, not padding
            difference = difference[targets != IGNORE]
        largest = max(largest, float(difference.max()) if difference.numel() else 0.0)
        decided.append(_same_decisions(task, ours, theirs, targets))
    before, after = _metrics(task, reference), _metrics(task, candidate)
    metric = task.main_metric
    same = np.concatenate(decided) if decided else np.array([])
    return {
        "examples": sum(len(targets) for targets in reference.targets),
        "max_abs_logit_diff": largest,
        "agreement": float(same.mean()) if same.size else None,
        "metric": metric,
        "metric_before": before[metric],
        "metric_after": after[metric],
        "metric_drop": before[metric] - after[metric],
    }


def _same_decisions(task: Any, ours: torch.Tensor, theirs: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """One boolean per decision: equal on both sides. Empty for a task without decisions (regression)."""
    first, second = task.predictions(ours, targets), task.predictions(theirs, targets)
    decide = getattr(task, "decide", None)
    if decide is not None:  # multi-label: probabilities against each label's threshold
        return (decide(first.numpy()) == decide(second.numpy())).ravel()
    if first.is_floating_point():
        return np.array([], dtype=bool)
    if first.dim() == 2:
        keep = targets != IGNORE
        return (first[keep] == second[keep]).numpy()
    return (first == second).numpy()


def _metrics(task: Any, scored: Scored) -> dict[str, Any]:
    pairs = zip(scored.logits, scored.targets, strict=True)
    predicted = [task.predictions(logits, targets).numpy() for logits, targets in pairs]
    return task.compute_metrics(predicted, [targets.numpy() for targets in scored.targets])


def failures(report: dict[str, Any], gate: Gate) -> list[str]:
    """What the export broke, one line each; empty when it passes."""
    found = []
    if gate.max_logit_diff is not None and report["max_abs_logit_diff"] > gate.max_logit_diff:
        found.append(f"max |Δlogit| {report['max_abs_logit_diff']:.3g} > {gate.max_logit_diff:g} (--max-logit-diff)")
    agreement = report["agreement"]
    if gate.min_agreement is not None and agreement is not None and agreement < gate.min_agreement:
        found.append(f"agreement {agreement:.4f} < {gate.min_agreement:g} (--min-agreement)")
    if gate.max_metric_drop is not None and report["metric_drop"] > gate.max_metric_drop:
        found.append(
            f"{report['metric']} fell from {report['metric_before']:.4f} to {report['metric_after']:.4f}, "
            f"by more than {gate.max_metric_drop:g} (--max-metric-drop)"
        )
    return found
