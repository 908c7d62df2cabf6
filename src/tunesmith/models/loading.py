"""Reading a model folder the same guarded way everywhere: a backbone, a run's model/ and its adapter/.

- No code that comes with a model runs: every load passes trust_remote_code=False, and a folder whose
  config.json or tokenizer_config.json names classes of its own (`auto_map`) is refused, whatever
  transformers would make of it (with a known model_type it would quietly build its own class instead).
- Weights come from safetensors only: a pickle (pytorch_model.bin) can run code as it is read. A
  safetensors file that is empty or cut short is refused before anything reads it.
- A trained model loads whole. transformers starts a missing weight at random and only logs it; a run's
  model/ missing a weight, or holding one the model lacks or of another shape, is an error here. A
  backbone may lack the head (it is new) and the pooler (sentence-embedding checkpoints often have
  none); a missing encoder weight is an error there too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tunesmith.errors import UserError, json_type

if TYPE_CHECKING:
    from transformers import PreTrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

CONFIG = "config.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
# Weights in other formats: pickles (which run code as they are read) and other frameworks'.
OTHER_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack")
# adapter/, as peft and tunesmith's bottleneck adapters both write it.
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"

# What a folder is decides how to mend it.
Kind = Literal["backbone", "run"]
FIX: dict[str, str] = {
    "backbone": "Save the model again with save_pretrained (it writes model.safetensors), or use another --model.",
    "run": "The run folder is damaged: copy it again from where it was trained, or train the run again.",
}


def read_json(path: Path, kind: Kind) -> dict[str, Any]:
    """A JSON object from a model or run folder, or a UserError naming the file."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path} is missing. {FIX[kind]}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path} is not readable JSON ({first_line(exc)}). {FIX[kind]}") from None
    if not isinstance(value, dict):
        raise UserError(f"{path} holds {json_type(value)}, not a JSON object. {FIX[kind]}")
    return value


def check_model_folder(folder: Path, kind: Kind) -> None:
    """Refuse, before anything loads it, a model folder with code of its own or weights that are not whole."""
    read_json(folder / CONFIG, kind)
    refuse_own_code(folder, kind)
    check_weights(folder, kind)


def refuse_own_code(folder: Path, kind: Kind) -> None:
    for name in (CONFIG, TOKENIZER_CONFIG):
        try:
            names_code = "auto_map" in json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, TypeError):
            continue  # absent or unreadable: the load that needs it says so
        if names_code:
            raise UserError(own_code_message(str(folder), name, kind))


def own_code_message(name: str, file: str, kind: Kind) -> str:
    fix = (
        "tunesmith never writes one, so the folder was changed after training: copy it again from where it "
        "was trained, or train the run again."
        if kind == "run"
        else "Use a model whose architecture transformers itself knows."
    )
    return (
        f"Model {name} ships its own Python code (auto_map in its {file}), and tunesmith does not run code "
        f"that comes with a model. {fix}"
    )


def check_weights(folder: Path, kind: Kind) -> None:
    """The folder's weights are safetensors, and each file is whole (its header and its length agree)."""
    index = folder / WEIGHTS_INDEX
    if index.is_file():
        weight_map = read_json(index, kind).get("weight_map")
        files = sorted({str(name) for name in weight_map.values()}) if isinstance(weight_map, dict) else []
        if not files or any(Path(name).name != name for name in files):
            raise UserError(f"{index} does not list the weight files of {folder} by name. {FIX[kind]}")
    elif (folder / WEIGHTS).is_file():
        files = [WEIGHTS]
    else:
        other = next((name for name in OTHER_WEIGHTS if (folder / name).exists()), None)
        if other is not None:
            raise UserError(
                f"{folder} holds its weights as {other}, not {WEIGHTS}. tunesmith reads weights only from "
                f"safetensors: a pickle can run code as it is read. {FIX[kind]}"
            )
        raise UserError(f"{folder} has no weights ({WEIGHTS} is missing). {FIX[kind]}")
    for name in files:
        check_safetensors(folder / name, kind)


def check_safetensors(path: Path, kind: Kind) -> None:
    """Refuse a safetensors file that is missing, empty, cut short or not safetensors at all."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise UserError(f"{path} is missing. {FIX[kind]}")
    try:
        # Opening reads the header and checks that the tensors it lists fill the file exactly.
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except (OSError, SafetensorError, ValueError) as exc:
        raise UserError(
            f"{path} is not a whole safetensors file ({path.stat().st_size:,} bytes; {first_line(exc)}): it is "
            f"empty, cut short or not safetensors. {FIX[kind]}"
        ) from None


def check_adapter_folder(folder: Path) -> None:
    """A run's adapter/: a readable adapter_config.json and whole safetensors weights."""
    read_json(folder / ADAPTER_CONFIG, "run")
    if not (folder / ADAPTER_WEIGHTS).is_file() and (folder / "adapter_model.bin").exists():
        raise UserError(
            f"{folder} holds its weights as adapter_model.bin, not {ADAPTER_WEIGHTS}. tunesmith reads weights only "
            f"from safetensors: a pickle can run code as it is read. {FIX['run']}"
        )
    check_safetensors(folder / ADAPTER_WEIGHTS, "run")


def check_adapter_keys(path: Path, missing: set[str], unknown: set[str]) -> None:
    """Refuse an adapter file that lacks weights the adapted model trains, or holds others."""
    found = [
        f"{len(keys)} {what} ({_some(keys)})" for what, keys in (("missing", missing), ("unknown", unknown)) if keys
    ]
    if found:
        raise UserError(
            f"{path} does not hold the weights of this run's adapter: {'; '.join(found)}. Loaded anyway, it would "
            f"not be the trained adapter (a missing weight starts at random). {FIX['run']}"
        )


def load_config(source: str | Path, kind: Kind) -> PreTrainedConfig:
    """The model's config as transformers reads it, without running code that comes with it."""
    from transformers import AutoConfig

    if Path(source).is_dir():
        refuse_own_code(Path(source), kind)
    try:
        return AutoConfig.from_pretrained(source, trust_remote_code=False)
    except ValueError as exc:
        if "custom code" in str(exc):
            raise UserError(own_code_message(str(source), CONFIG, kind)) from None
        raise _unloadable(source, exc, kind) from None
    except OSError as exc:
        raise _unloadable(source, exc, kind) from None


def load_weights(
    model_class: Any, source: str | Path, kind: Kind, missing: set[str] | None = None, **options: Any
) -> PreTrainedModel:
    """`model_class.from_pretrained(source, **options)` with the guards above.

    kind "run": every weight of the model must come from the folder. kind "backbone": the head and
    the pooler may be missing or of another shape (they start afresh); the encoder's weights may not.
    `missing`, when given, receives the names of the weights that started afresh.
    """
    from safetensors import SafetensorError

    if Path(source).is_dir():
        check_model_folder(Path(source), kind)
    try:
        model, info = model_class.from_pretrained(
            source,
            trust_remote_code=False,
            use_safetensors=True,
            output_loading_info=True,
            # Reported in `info` and judged below, rather than raised as a RuntimeError.
            ignore_mismatched_sizes=True,
            **options,
        )
    except ValueError as exc:
        if "custom code" in str(exc):
            raise UserError(own_code_message(str(source), CONFIG, kind)) from None
        raise _unloadable(source, exc, kind) from None
    except (OSError, RuntimeError, SafetensorError) as exc:
        raise _unloadable(source, exc, kind) from None
    check_complete(model, info, source, kind)
    if missing is not None:
        missing.update(info["missing_keys"])
    return model


def check_complete(model: Any, info: dict[str, Any], source: str | Path, kind: Kind) -> None:
    """Refuse a load that left weights at random (see the module's docstring for what each kind allows)."""
    missing = set(info["missing_keys"])
    mismatched = {key for key, *_ in info["mismatched_keys"]}
    if kind == "run":
        problems = {"missing": missing, "of another shape": mismatched, "unknown to the model": info["unexpected_keys"]}
    else:
        problems = {"missing": _encoder(model, missing), "of another shape": _encoder(model, mismatched)}
    found = [f"{len(keys)} {what} ({_some(keys)})" for what, keys in problems.items() if keys]
    if found:
        raise UserError(
            f"Model {source} does not hold every weight the model needs: {'; '.join(found)}. Loaded anyway, it "
            f"would not be the model that was saved (a missing weight starts at random). {FIX[kind]}"
        )


def _encoder(model: Any, keys: set[str]) -> set[str]:
    """The keys that belong to the pretrained encoder, less its pooler."""
    prefix = getattr(model, "base_model_prefix", "") + "."
    return {key for key in keys if key.startswith(prefix) and "pooler" not in key.split(".")}


def _some(keys: Any) -> str:
    names = sorted(keys)
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def _unloadable(source: str | Path, exc: Exception, kind: Kind) -> UserError:
    return UserError(f"Model {source} could not be loaded ({type(exc).__name__}: {first_line(exc)}). {FIX[kind]}")


def load_tokenizer(source: str | Path, kind: Kind) -> PreTrainedTokenizerBase:
    """The tokenizer a model folder (or hub id) holds, without running code that comes with it."""
    from transformers import AutoTokenizer

    if Path(source).is_dir():
        refuse_own_code(Path(source), kind)
    try:
        return AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    except Exception as exc:  # tokenizers' own errors are plain Exceptions: a damaged tokenizer.json raises one
        if isinstance(exc, ValueError) and "custom code" in str(exc):
            raise UserError(own_code_message(str(source), TOKENIZER_CONFIG, kind)) from None
        raise UserError(
            f"Model {source} has no usable tokenizer ({type(exc).__name__}: {first_line(exc)}). {FIX[kind]}"
        ) from None


def first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
