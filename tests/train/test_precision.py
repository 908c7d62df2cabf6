import json
import math
from pathlib import Path

import pytest
import torch

import tunesmith
from tunesmith.errors import UserError
from tunesmith.train.precision import cpu_has_fast_bf16, resolve_precision


def test_fast_bf16_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    plain = tmp_path / "avx2"
    plain.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n")
    amx = tmp_path / "amx"
    amx.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f amx_bf16 amx_tile\n")
    assert not cpu_has_fast_bf16(plain)
    assert cpu_has_fast_bf16(amx)
    assert not cpu_has_fast_bf16(tmp_path / "missing")


def test_auto_picks_bf16_only_where_the_cpu_computes_it_natively() -> None:
    assert resolve_precision("auto", cuda=False, fast_cpu_bf16=False) == "no"
    assert resolve_precision("auto", cuda=False, fast_cpu_bf16=True) == "bf16"
    assert resolve_precision("no", cuda=False, fast_cpu_bf16=True) == "no"
    assert resolve_precision("bf16", cuda=False, fast_cpu_bf16=False) == "bf16"


def test_fp16_without_a_gpu_is_refused_with_the_alternatives() -> None:
    with pytest.raises(UserError, match="fp16 needs a CUDA GPU.*bf16"):
        resolve_precision("fp16", cuda=False)


def train_losses(run_dir: Path) -> list[float]:
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    return [record["loss"] for record in history if "split" not in record and "loss" in record]


def test_auto_stays_in_fp32_on_this_machine_unless_it_has_fast_bf16(tiny_config: dict) -> None:
    tiny_config["training"]["epochs"] = 1
    run = tunesmith.finetune(tiny_config)
    expected = resolve_precision("auto")
    assert run.metrics["training"]["mixed_precision"] == expected


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
def test_auto_picks_bf16_on_a_gpu_that_has_it() -> None:
    assert resolve_precision("auto") == ("bf16" if torch.cuda.is_bf16_supported() else "fp16")


on_the_cpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU path")


@pytest.mark.parametrize(
    "precision",
    [
        pytest.param("bf16", marks=on_the_cpu, id="bf16-cpu"),
        pytest.param("bf16", marks=needs_cuda, id="bf16-cuda"),
        pytest.param("fp16", marks=needs_cuda, id="fp16-cuda"),
    ],
)
def test_autocast_follows_the_fp32_curve_and_keeps_fp32_weights(
    precision: str, tiny_config: dict, tmp_path: Path
) -> None:
    tiny_config["training"]["mixed_precision"] = "no"
    tiny_config["output_dir"] = str(tmp_path / "fp32")
    fp32 = tunesmith.finetune(tiny_config)
    tiny_config["training"]["mixed_precision"] = precision
    tiny_config["output_dir"] = str(tmp_path / precision)
    mixed = tunesmith.finetune(tiny_config)
    figures = mixed.metrics["training"]
    assert figures["mixed_precision"] == precision
    assert figures["device"].startswith("cuda" if torch.cuda.is_available() else "cpu")
    reference, autocast = train_losses(fp32.path), train_losses(mixed.path)
    # Autocast really ran (its rounding changes every loss) and followed the same curve.
    assert all(math.isfinite(loss) for loss in autocast)
    assert autocast != reference
    assert autocast == pytest.approx(reference, abs=0.02)
    predictor = tunesmith.load(mixed.path)
    assert all(p.dtype == torch.float32 for p in predictor.model.parameters())
    assert predictor.predict("a superb experience")[0]["label"] in {"neg", "pos"}
