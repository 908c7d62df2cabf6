import os
import subprocess
import sys
from pathlib import Path

import pytest

import tunesmith


def test_the_public_names_resolve_to_their_modules() -> None:
    from tunesmith.api import finetune
    from tunesmith.predictor import Predictor, load

    assert tunesmith.finetune is finetune and tunesmith.load is load and tunesmith.Predictor is Predictor
    assert set(tunesmith.__all__) <= set(dir(tunesmith))
    with pytest.raises(AttributeError, match="no attribute 'fine_tune'"):
        tunesmith.fine_tune  # noqa: B018


def test_the_command_line_starts_without_torch() -> None:
    # `tunesmith --help` and config errors answer at once; torch and transformers take seconds.
    probe = "import sys, tunesmith, tunesmith.cli; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_scoring_libraries_load_only_when_scoring() -> None:
    probe = "import sys, tunesmith.api; print(sorted({'sklearn', 'seqeval', 'scipy.stats'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_bad_input_is_answered_before_torch_loads(tmp_path) -> None:
    # A typo in a config key, a wrong run folder, a missing file or a file without the run's
    # columns: the error comes first, torch's seconds never.
    (tmp_path / "typo.yaml").write_text("data:\n  train: train.csv\ntraining:\n  epoch: 3\n")
    (tmp_path / "other.csv").write_text("sentence,label\nfine,pos\n")
    finished = tmp_path / "finished"
    (finished / "model").mkdir(parents=True)
    (finished / "model" / "config.json").write_text("{}")
    (finished / "config.yaml").write_text("data:\n  train: train.csv\n")
    probe = (
        "import sys; from tunesmith.cli import main; "
        f"codes = [main(['train', {str(tmp_path / 'typo.yaml')!r}]), "
        f"main(['evaluate', {str(tmp_path)!r}, '--data', 'dev.csv']), "
        f"main(['predict', {str(tmp_path)!r}, '--text', 'fine']), "
        f"main(['evaluate', {str(finished)!r}, '--data', 'missing.csv']), "
        f"main(['predict', {str(finished)!r}, '--input', 'missing.csv']), "
        f"main(['evaluate', {str(finished)!r}, '--data', 'other.csv']), "
        f"main(['predict', {str(finished)!r}, '--input', 'other.csv'])]; "
        "print(codes, sorted({'torch', 'transformers'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert done.stdout.strip() == "[2, 2, 2, 2, 2, 2, 2] []"
    assert done.stderr.count("is not a finished run folder") == 2
    assert done.stderr.count("missing.csv: file not found") == 2
    assert done.stderr.count('other.csv: no column "text"') == 2
    assert "epoch" in done.stderr


HUGE_PAGE_PROBE = """
import tunesmith, torch
block = torch.zeros(1 << 22)  # 16 MB
address = block.data_ptr()
for line in open("/proc/self/smaps"):
    fields = line.split()
    if "-" in fields[0] and ":" not in fields[0]:
        start, end = (int(part, 16) for part in fields[0].split("-"))
        inside = start <= address < end
    elif inside and fields[0] == "VmFlags:":
        print("hg" in fields[1:])
"""


@pytest.mark.skipif(
    not Path("/sys/kernel/mm/transparent_hugepage").exists(), reason="needs Linux with transparent huge pages"
)
@pytest.mark.parametrize(("preset", "advised"), [(None, "True"), ("0", "False")])
def test_large_cpu_tensors_ask_for_huge_pages_unless_the_user_said_no(preset: str | None, advised: str) -> None:
    env = {key: value for key, value in os.environ.items() if key != "THP_MEM_ALLOC_ENABLE"}
    if preset is not None:
        env["THP_MEM_ALLOC_ENABLE"] = preset
    done = subprocess.run([sys.executable, "-c", HUGE_PAGE_PROBE], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == advised
