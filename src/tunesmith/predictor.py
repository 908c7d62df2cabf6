"""Load a run folder and predict: `tunesmith.load(run_dir).predict(texts)`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import yaml
from accelerate import Accelerator
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from tunesmith.config import RunConfig, validate_config
from tunesmith.data.readers import read_table
from tunesmith.data.splits import select_columns
from tunesmith.errors import UserError
from tunesmith.runs import read_status
from tunesmith.tasks import get_task
from tunesmith.tasks.encoding import tokenize
from tunesmith.train.batching import eval_loader
from tunesmith.train.loop import evaluate


@dataclass
class Predictor:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    names: list[str]
    config: RunConfig
    task: ModuleType

    @classmethod
    def from_run(cls, run_dir: Path) -> Predictor:
        run_dir = Path(run_dir)
        if not (run_dir / "model" / "config.json").is_file():
            status = read_status(run_dir)
            state = f"its status is {status!r}" if status else "it has no model/ folder"
            raise UserError(
                f"{run_dir} is not a finished run folder ({state}). Point at a folder written by "
                "`tunesmith train` that finished."
            )
        config = validate_config(yaml.safe_load((run_dir / "config.yaml").read_text()), str(run_dir / "config.yaml"))
        task = get_task(config.task)
        model = task.load_trained(run_dir / "model")
        model.eval()
        tokenizer = AutoTokenizer.from_pretrained(run_dir / "model")
        names = json.loads((run_dir / "labels.json").read_text())
        return cls(model, tokenizer, names, config, task)

    def predict(
        self, texts: list[str], text_pairs: list[str] | None = None, batch_size: int = 64
    ) -> list[dict[str, Any]]:
        """One {label, score, probabilities} per text, in input order."""
        if isinstance(texts, str):
            texts = [texts]
        logits = self.logits(texts, text_pairs, batch_size)
        return self.task.decode(logits, self.names)

    def logits(self, texts: list[str], text_pairs: list[str] | None = None, batch_size: int = 64) -> torch.Tensor:
        # Longest first so each batch pads little; the original order is restored at the end.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        chunks: list[torch.Tensor] = []
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                pair = [text_pairs[i] for i in rows] if text_pairs is not None else None
                encoded = self.tokenizer(
                    [texts[i] for i in rows],
                    pair,
                    truncation=True,
                    max_length=self.config.training.max_length,
                    padding=True,
                    return_tensors="pt",
                )
                chunks.append(self.model(**encoded).logits.float())
        if not chunks:
            return torch.empty(0, len(self.names))
        stacked = torch.cat(chunks)
        result = torch.empty_like(stacked)
        result[torch.tensor(order)] = stacked
        return result

    def evaluate(self, path: Path, fmt: str | None = None) -> dict[str, Any]:
        """The run's metrics on a labelled file, read with the run's column settings."""
        data_cfg = self.config.data
        table = read_table(Path(path), fmt or data_cfg.format, data_cfg.column_names, split="test")
        split = select_columns(table, data_cfg)
        split = self.task.encode_labels(split, self.names, Path(path))
        encoded = tokenize(split, self.tokenizer, self.config.training.max_length)
        accelerator = Accelerator()
        loader = accelerator.prepare(eval_loader(encoded, self.tokenizer, self.config.training.eval_batch_size))
        return evaluate(accelerator.prepare(self.model), loader, accelerator, self.task, self.names)

    def read_texts(self, path: Path, text_column: str | None = None) -> tuple[list[str], list[str] | None]:
        """Texts (and pairs) of an unlabelled file, for `predict --input`."""
        data_cfg = self.config.data
        column = text_column or data_cfg.text_column
        table = read_table(Path(path), data_cfg.format, data_cfg.column_names, split="test")
        if column not in table.columns:
            raise UserError(
                f'{path}: no column "{column}". Columns found: {", ".join(map(repr, table.columns))}. '
                "Pass --text-column NAME."
            )
        texts = [str(value) if value is not None else "" for value in table.columns[column]]
        pair_column = data_cfg.text_pair_column
        pairs = None
        if pair_column and pair_column in table.columns:
            pairs = [str(value) if value is not None else "" for value in table.columns[pair_column]]
        return texts, pairs
