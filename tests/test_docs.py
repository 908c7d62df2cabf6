"""The docs name every config key the code accepts, so they cannot silently drift."""

from pathlib import Path

import pytest

from tunesmith.config import (
    AdaLoraOptions,
    AdapterOptions,
    AdversarialOptions,
    AugmentationOptions,
    CausalOptions,
    ClassificationOptions,
    ClozeOptions,
    ContinualOptions,
    ContrastiveOptions,
    DataConfig,
    DoctorOptions,
    FreezeOptions,
    GradualOptions,
    Ia3Options,
    LayerDecayOptions,
    LoraOptions,
    LossOptions,
    MultiLabelOptions,
    NerOptions,
    PromptOptions,
    RDropOptions,
    RegressionOptions,
    RegularizationConfig,
    ReportOptions,
    RunConfig,
    SearchOptions,
    TrainingConfig,
    ZeroShotOptions,
)

SECTIONS = [
    RunConfig,
    DataConfig,
    TrainingConfig,
    RegularizationConfig,
    ClassificationOptions,
    RegressionOptions,
    MultiLabelOptions,
    NerOptions,
    CausalOptions,
    LossOptions,
    FreezeOptions,
    GradualOptions,
    LayerDecayOptions,
    LoraOptions,
    AdaLoraOptions,
    Ia3Options,
    PromptOptions,
    AdapterOptions,
    SearchOptions,
    DoctorOptions,
    ZeroShotOptions,
    ContrastiveOptions,
    ClozeOptions,
    ReportOptions,
    AdversarialOptions,
    RDropOptions,
    ContinualOptions,
    AugmentationOptions,
]

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: s.__name__)
def test_configuration_reference_names_every_key(section: type) -> None:
    text = REFERENCE.read_text()
    missing = [name for name in section.model_fields if f"| `{name}` |" not in text]
    assert not missing, f"docs/configuration.md lacks {missing}"


PRETRAINING = Path(__file__).resolve().parents[1] / "docs" / "pretraining.md"


def test_pretraining_guide_names_every_pretraining_key() -> None:
    from tunesmith.pretrain.config import (
        ArchitectureConfig,
        CorpusConfig,
        MaskingConfig,
        PretrainConfig,
        VocabularyConfig,
    )

    text = PRETRAINING.read_text()
    sections = [PretrainConfig, CorpusConfig, MaskingConfig, ArchitectureConfig, VocabularyConfig]
    missing = [f"{s.__name__}.{name}" for s in sections for name in s.model_fields if f"| `{name}` |" not in text]
    assert not missing, f"docs/pretraining.md lacks {missing}"
