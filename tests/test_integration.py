"""The bundled MiniLM on real SST-2 data: a real metric with a real threshold (about a minute)."""

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import tunesmith
from tests.conftest import shared_file

pytestmark = pytest.mark.integration


def test_sst2_2000_rows_reach_80_percent_dev_accuracy(tmp_path) -> None:
    config = {
        "model": "minilm",
        "output_dir": str(tmp_path / "sst2"),
        "data": {
            "train": str(shared_file("sst2", "train.tsv")),
            "validation": str(shared_file("sst2", "dev.tsv")),
            "text_column": "sentence",
            "max_train_rows": 2000,
            "test_split": 0.0,
        },
        # 1e-4 rather than the 5e-5 default: on 2,000 rows the search (docs/strategies.md) found twice
        # the default rate better, and at 5e-5 the result swings around 0.80 with the data order.
        "training": {"epochs": 2, "batch_size": 32, "learning_rate": 1e-4},
    }
    run = tunesmith.finetune(config)
    accuracy = run.metrics["validation"]["accuracy"]
    print(f"SST-2 dev accuracy after 2,000 rows x 2 epochs: {accuracy:.4f}")
    assert accuracy >= 0.80
    assert run.metrics["training"]["examples"] == {"train": 2000, "validation": 872}

    # Plain transformers, given only the saved folder, predicts exactly what tunesmith predicts.
    texts = ["a gorgeous , witty , seductive movie .", "the plot is nothing but boilerplate clichés", "it 's ok"]
    ours = tunesmith.load(run.path).predict(texts)
    model = AutoModelForSequenceClassification.from_pretrained(run.path / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(run.path / "model")
    with torch.no_grad():
        theirs = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.softmax(-1)
    assert [row["label"] for row in ours] == [model.config.id2label[int(i)] for i in theirs.argmax(-1)]
    assert [row["score"] for row in ours] == pytest.approx(theirs.max(-1).values.tolist(), abs=1e-5)
