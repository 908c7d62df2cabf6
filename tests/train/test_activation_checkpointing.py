import warnings

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from tunesmith.train.activation_checkpointing import checkpoint_activations


def test_checkpointing_turns_on_without_deprecation_warnings_and_keeps_the_gradients(tiny_model: str) -> None:
    batch = AutoTokenizer.from_pretrained(tiny_model)(
        ["a short one", "and a longer second text"], padding=True, return_tensors="pt"
    )
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2)
        if checkpointing:
            with warnings.catch_warnings():
                warnings.simplefilter("error", FutureWarning)
                checkpoint_activations(model)
        assert any(getattr(module, "gradient_checkpointing", False) for module in model.modules()) is checkpointing
        model.train()
        model(**batch, labels=torch.tensor([0, 1])).loss.backward()
        grads.append(model.base_model.embeddings.word_embeddings.weight.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
