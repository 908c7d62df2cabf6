from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification

from tunesmith.models.backbones import resolve
from tunesmith.models.scratch.encoder import EncoderConfig
from tunesmith.models.scratch.masked_lm import PREDICTION_BUCKET, MaskedLanguageModel, load_masked_lm, save_masked_lm
from tunesmith.pretrain.models import continued_encoder, grow_vocabulary
from tunesmith.pretrain.vocabulary import NewToken

CONFIG = EncoderConfig(vocab_size=50, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                       max_positions=32, dropout=0.0, attention_dropout=0.0)  # fmt: skip


def inputs() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    ids = torch.randint(5, 50, (3, 10))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def test_head_is_tied_to_the_word_embeddings() -> None:
    model = MaskedLanguageModel(CONFIG)
    with torch.no_grad():
        model.encoder.embeddings.words.weight[7] += 1.0
    hidden = torch.randn(2, 16)
    direct = model.head(hidden, model.encoder.embeddings.words.weight)
    manual = torch.nn.functional.linear(
        model.head.norm(torch.nn.functional.gelu(model.head.dense(hidden))),
        model.encoder.embeddings.words.weight,
        model.head.bias,
    )
    assert torch.allclose(direct, manual)
    # One matrix, not two: the embedding appears once among the parameters.
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in set(model.parameters()))


def test_only_the_chosen_positions_are_projected_in_row_major_order() -> None:
    model = MaskedLanguageModel(CONFIG).eval()
    batch = inputs()
    predict = torch.zeros(3, 10, dtype=torch.bool)
    predict[0, 2] = predict[2, 5] = predict[2, 9] = True
    every = model(**batch).logits.view(3, 10, -1)
    chosen = model(**batch, predict=predict).logits
    assert chosen.shape == (PREDICTION_BUCKET, 50)  # padded to the bucket
    assert torch.allclose(chosen[:3], every[predict], atol=1e-6)


def test_saved_as_bert_for_masked_lm_gives_the_same_logits(tmp_path: Path) -> None:
    model = MaskedLanguageModel(CONFIG).eval()
    save_masked_lm(model, tmp_path)
    bert = AutoModelForMaskedLM.from_pretrained(tmp_path).eval()
    assert type(bert).__name__ == "BertForMaskedLM"
    batch = inputs()
    with torch.no_grad():
        ours = model(**batch).logits.view(3, 10, -1)
        theirs = bert(**batch).logits
    keep = batch["attention_mask"].bool()
    assert (ours[keep] - theirs[keep]).abs().max() < 1e-5
    # ... and back: the folder's weights give the same model again.
    reloaded, had_head = load_masked_lm(bert.state_dict(), CONFIG)
    assert had_head
    with torch.no_grad():
        assert torch.allclose(reloaded.eval()(**batch).logits, model(**batch).logits, atol=1e-6)
    # Every task loads it as BERT; only its new head (and the pooler BertForMaskedLM leaves out) start afresh.
    classifier = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=2)
    assert torch.equal(classifier.bert.embeddings.word_embeddings.weight, model.encoder.embeddings.words.weight)


def test_minilm_has_no_masked_lm_head_and_gets_a_new_one_saying_so(caplog) -> None:
    with caplog.at_level("WARNING"):
        model = continued_encoder(resolve("minilm"), "minilm", [])
    assert "has no masked-LM head" in caplog.text
    assert model.config.vocab_size == 30522 and model.config.num_layers == 6
    assert abs(float(model.head.dense.weight.std()) - 0.02) < 0.002  # BERT's initialisation


def test_grown_vocabulary_starts_from_the_mean_of_the_old_pieces() -> None:
    model = MaskedLanguageModel(CONFIG)
    words = model.encoder.embeddings.words.weight.detach().clone()
    grow_vocabulary(model, [NewToken("ab", 9, [3, 4]), NewToken("字", 9, [])])
    grown = model.encoder.embeddings.words.weight
    assert grown.shape == (52, 16) and model.config.vocab_size == 52 and model.head.bias.shape == (52,)
    assert torch.allclose(grown[50], words[[3, 4]].mean(0))
    assert torch.allclose(grown[51], words.mean(0))
    assert torch.equal(grown[:50], words)
    assert model(**inputs()).logits.shape[-1] == 52
