"""Load a run folder and predict: `tunesmith.load(run_dir).predict(texts)`."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accelerate import Accelerator
from transformers import PreTrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from tunesmith.config import RunConfig
from tunesmith.data.splits import check_pairs, check_texts
from tunesmith.errors import UserError, json_type
from tunesmith.models.backbones import check_loadable, position_limit
from tunesmith.models.loading import (
    FIX,
    check_adapter_folder,
    check_model_folder,
    first_line,
    load_config,
    load_tokenizer,
    read_json,
)
from tunesmith.quiet import quiet_libraries
from tunesmith.runs import check_finished, run_config
from tunesmith.speedups import apply_speedups
from tunesmith.tasks import get_task, reading_options
from tunesmith.tasks.protocol import Task

if TYPE_CHECKING:
    from tunesmith.causal.generation import GenerationSettings
    from tunesmith.export.runtime import OnnxModel

# Predicting needs neither datasets (with pandas and pyarrow) nor peft, which cost a predicting
# process about 100 MB and 0.8 s of its start. So `evaluate`, which reads a labelled file into
# a Dataset, and adapter runs import them where they need them.

logger = logging.getLogger(__name__)


@dataclass
class Predictor:
    # A transformers model, or an onnxruntime session called the same way (an ONNX export).
    model: PreTrainedModel | OnnxModel
    tokenizer: PreTrainedTokenizerBase
    config: RunConfig
    task: Task

    @property
    def names(self) -> list[str]:
        return self.task.names

    @classmethod
    @quiet_libraries(uses_datasets=False)
    def from_run(cls, run_dir: Path, device: Any = None) -> Predictor:
        """The run's model on `device` (default: where Accelerate would train; a run still being saved
        passes its own, so that no second Accelerator is made in its process)."""
        run_dir = Path(run_dir)
        from tunesmith.export.folder import is_export, read_manifest

        # An hf export is a model/ folder with the run's files, and loads as a run does.
        if is_export(run_dir) and read_manifest(run_dir)["format"] == "onnx":
            from tunesmith.export.runtime import load_export

            return load_export(run_dir)
        check_finished(run_dir)
        config = run_config(run_dir)
        if config.method != "finetune":
            from tunesmith.fewshot.predictor import ClozePredictor, SentencePredictor

            task = get_task(config, saved_task_state(run_dir))
            kind = ClozePredictor if config.method == "cloze" else SentencePredictor
            return kind.from_run(run_dir, config, task)  # type: ignore[return-value]
        full, adapter = run_dir / "model", run_dir / "adapter"
        # The folder is checked before anything is loaded from it, so that damage is named, not half read.
        if (full / "config.json").is_file():
            check_model_folder(full, "run")
            source, backbone, model_config = full, None, load_config(full, "run")
        else:
            check_adapter_folder(adapter)
            backbone = check_loadable(config.model)
            source, model_config = adapter, load_config(backbone, "backbone")
        config = within_position_limit(config, model_config)
        task = get_task(config, saved_task_state(run_dir))
        model = task.load_trained(full) if backbone is None else _adapted(task, backbone, adapter)
        # Where Accelerate would train: a visible GPU, else the CPU (CUDA_VISIBLE_DEVICES= keeps it there).
        device = device if device is not None else Accelerator().device
        apply_speedups(model, config.training, device, training=False)
        model.to(device).eval()
        tokenizer = load_tokenizer(source, "run")
        tokenizer.truncation_side = config.training.truncation_side
        return cls(model, tokenizer, config, task)

    def predict(
        self, texts: list[str] | str, text_pairs: list[str] | None = None, batch_size: int = 64
    ) -> list[dict[str, Any]]:
        """One result per text, in input order: {label, score, probabilities} for classification,
        {value} for regression, {labels, probabilities} for multi-label, {entities} for NER.

        Refused (UserError): a text that is not a string or holds nothing visible (empty, whitespace,
        zero-width characters); `text_pairs` for a run trained on single texts, and none for a run
        trained on pairs.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        if isinstance(text_pairs, str):
            text_pairs = [text_pairs]
        text_pairs = None if text_pairs is None else list(text_pairs)
        check_pairs(self.config.data, texts, text_pairs)
        check_texts(texts, "texts[{}]".format)
        if text_pairs is not None:
            check_texts(text_pairs, "text_pairs[{}]".format)
        task = self.task
        prepared = task.preprocess(self.tokenizer, texts, text_pairs, batch_size)
        return task.decode(prepared, [task.forward(self.model, batch) for batch in prepared.batches])

    def generate(
        self, prompts: list[str] | str, settings: GenerationSettings | None = None, chat: bool | None = None
    ) -> list[str]:
        """The continuation of each prompt, by a run of task causal (greedy unless `settings.sample`).

        `chat`: each prompt is a user turn, rendered by the run's chat template (default: when the run
        was trained on chats); False: the prompt is raw text, continued as it is.
        """
        from tunesmith.causal.generation import GenerationSettings, as_prompt, generate

        if not self.task.info.generative:
            raise UserError(f"generate continues text with a run of task causal; this run is {self.config.task}.")
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        check_texts(prompts, "prompts[{}]".format)
        settings = settings or GenerationSettings(max_new_tokens=self.config.causal.max_new_tokens)
        chat = self.task.chat if chat is None else chat
        if chat and not getattr(self.tokenizer, "chat_template", None):
            raise UserError("This run's tokenizer has no chat template, so prompts cannot be chat turns: drop --chat.")
        rendered = [as_prompt(self.tokenizer, prompt, chat) for prompt in prompts]
        return generate(self.model, self.tokenizer, rendered, settings, self.task.stop_token_ids, rendered=chat)

    @quiet_libraries()
    def evaluate(self, path: Path, fmt: str | None = None) -> dict[str, Any]:
        """The run's metrics on a labelled file, read with the run's column settings."""
        from tunesmith.data.splits import read_labelled
        from tunesmith.evaluate import calibration
        from tunesmith.stages.data import text_columns, tokenize_split
        from tunesmith.stages.evaluate import prepared_loader
        from tunesmith.tasks.encoding import check_readable
        from tunesmith.train.loop import evaluate

        data_cfg = self.config.data.model_copy(update={"format": fmt or self.config.data.format})
        labelled = read_labelled(Path(path), data_cfg, **reading_options(self.config))
        training = self.config.training
        if not self.task.info.generative:  # a generative task's rows were checked as read
            check_readable(
                [labelled],
                self.tokenizer,
                Path(path),
                text_columns(self.config),
                training.max_length,
                training.truncation_side,
            )
        split = self.task.encode(labelled, Path(path))
        encoded, swapped = tokenize_split(self.config, self.task, self.tokenizer, split, training=False)
        accelerator = Accelerator()
        batch_size = self.config.training.eval_batch_size
        loader = prepared_loader(self.task, self.tokenizer, encoded, swapped, batch_size, accelerator)
        outputs: list = []
        metrics = evaluate(accelerator.prepare(self.model), loader, accelerator, self.task, outputs)
        # The calibration error, as the run's metrics.json has it (classification).
        records = [record for kept, targets in outputs for record in self.task.example_records(kept, targets)]
        metrics.update(calibration.scores(records))
        if self.task.info.generative:
            metrics.update(self.task.generation_scores(self.model, self.tokenizer, encoded))
        return metrics


def within_position_limit(config: RunConfig, model: PreTrainedConfig) -> RunConfig:
    """The run's config, with max_length cut to what the model's position embeddings cover.

    Planning refuses a longer max_length; a run folder from before that check may still hold one,
    and a text longer than the positions would crash the model.
    """
    limit = position_limit(model)
    if limit is None or config.training.max_length <= limit:
        return config
    logger.warning(
        "training.max_length %d in the run's config.yaml is longer than the model's %d positions "
        "(max_position_embeddings); texts are cut at %d tokens.",
        config.training.max_length,
        limit,
        limit,
    )
    return config.model_copy(update={"training": config.training.model_copy(update={"max_length": limit})})


def saved_task_state(run_dir: Path) -> dict[str, Any]:
    """What the task learnt in training (task.json; only the label names in older runs)."""
    if (run_dir / "task.json").is_file():
        return read_json(run_dir / "task.json", "run")
    return {"names": read_json_list(run_dir / "labels.json")}


def _adapted(task: Task, backbone: str, adapter: Path) -> PreTrainedModel:
    """Only the adapter was saved: rebuild it on the backbone the run started from."""
    from tunesmith.strategies import load_adapter

    return load_adapter(task.load_model(backbone), adapter)


def read_json_list(path: Path) -> list[Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path} is missing or not readable JSON ({first_line(exc)}). {FIX['run']}") from None
    if not isinstance(value, list):
        raise UserError(f"{path} holds {json_type(value)}, not the list of label names. {FIX['run']}")
    return value


def load(run_dir: str | Path) -> Predictor:
    """A predictor for a finished run folder (or any folder with model/ and labels.json), or an export of one."""
    return Predictor.from_run(Path(run_dir))
