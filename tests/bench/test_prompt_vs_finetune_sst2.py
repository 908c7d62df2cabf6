"""bench/prompt_vs_finetune_sst2.py's arithmetic: contextual calibration and the per-seed paired difference."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from tests.bench.scripts import bench_script


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return bench_script("prompt_vs_finetune_sst2")


def test_calibration_divides_out_the_content_free_prior(bench: ModuleType) -> None:
    # By hand: [0.2/0.1, 0.8/0.9] = [2, 8/9], over their sum 26/9: [18/26, 8/26].
    calibrated = bench.calibrate(np.array([[0.2, 0.8], [0.5, 0.5]]), np.array([0.1, 0.9]))
    assert calibrated[0] == pytest.approx([18 / 26, 8 / 26])
    assert calibrated[1] == pytest.approx([0.9, 0.1])
    # A text the template alone would call positive 90% of the time is called negative once that prior goes.
    assert calibrated.argmax(axis=1).tolist() == [0, 0]


def test_paired_difference_is_the_mean_and_sample_std_of_per_seed_gaps(bench: ModuleType) -> None:
    # Gaps 0.1, 0.0, -0.1: mean 0, sample std 0.1.
    assert bench.paired([0.7, 0.6, 0.5], [0.6, 0.6, 0.6]) == "+0.0000 ± 0.1000"
    assert bench.paired([0.8], [0.6]) == "+0.2000 ± 0.0000"
