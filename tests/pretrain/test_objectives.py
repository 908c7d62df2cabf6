from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer

from tunesmith.pretrain.blocks import packed_blocks
from tunesmith.pretrain.config import MaskingConfig
from tunesmith.pretrain.objectives import IGNORE_INDEX, CausalLanguageModeling, MaskedLanguageModeling


def batch_of(tokenizer_dir: Path, masking: MaskingConfig, rows: int = 64, seed: int = 0) -> tuple:
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    documents = ["the gardenriver cat sat on the mat and the dog ran to the park ."] * 200
    blocks = packed_blocks(documents, tokenizer, block_size=64, causal=False)
    torch.manual_seed(seed)
    rows_ = [blocks[i] for i in range(rows)]
    objective = MaskedLanguageModeling(masking)
    return tokenizer, rows_, objective.transform_batch(objective.collator(tokenizer)(rows_))


def test_dynamic_masking_follows_the_rate_and_the_80_10_10_rule(tokenizer_dir: Path) -> None:
    tokenizer, rows, batch = batch_of(tokenizer_dir, MaskingConfig(rate=0.3))
    original = torch.tensor([row["input_ids"] for row in rows])
    special = torch.tensor([row["special_tokens_mask"] for row in rows]).bool()
    chosen = batch["labels"] != IGNORE_INDEX
    assert torch.equal(batch["predict"], chosen)
    assert not (chosen & special).any()
    assert abs(chosen.sum() / (~special).sum() - 0.3) < 0.03
    assert torch.equal(batch["labels"][chosen], original[chosen])  # the targets are the original tokens
    masked = batch["input_ids"][chosen] == tokenizer.mask_token_id
    kept = batch["input_ids"][chosen] == original[chosen]
    assert abs(masked.float().mean() - 0.8) < 0.04
    assert abs(kept.float().mean() - 0.1) < 0.04  # (a random token may also hit the original, rarely)
    assert torch.equal(batch["input_ids"][~chosen], original[~chosen])


def test_masks_differ_from_batch_to_batch(tokenizer_dir: Path) -> None:
    _, _, first = batch_of(tokenizer_dir, MaskingConfig(), seed=0)
    _, _, second = batch_of(tokenizer_dir, MaskingConfig(), seed=1)
    assert not torch.equal(first["predict"], second["predict"])


def test_whole_word_masking_chooses_every_piece_of_a_word(tokenizer_dir: Path) -> None:
    tokenizer, rows, batch = batch_of(tokenizer_dir, MaskingConfig(rate=0.3, whole_word=True))
    words = torch.tensor([row["word_numbers"] for row in rows])
    chosen = batch["predict"]
    for row in range(len(rows)):
        for word in words[row].unique().tolist():
            if word >= 0:
                pieces = chosen[row][words[row] == word]
                assert pieces.all() or not pieces.any(), f"word {word} of row {row} is masked in part"
    split_words = sum(int((words[r] == w).sum() > 1) for r in range(len(rows)) for w in words[r].unique().tolist())
    assert split_words > 0  # the test covers words of several pieces


def test_loss_and_accuracy_count_only_the_chosen_tokens() -> None:
    objective = MaskedLanguageModeling(MaskingConfig())
    labels = torch.tensor([[IGNORE_INDEX, 3, IGNORE_INDEX], [1, IGNORE_INDEX, IGNORE_INDEX]])
    # Two chosen tokens, then a row of padding (the model pads to its bucket).
    logits = torch.tensor([[0.0, 0.0, 0.0, 9.0], [0.0, 0.0, 9.0, 0.0], [9.0, 0.0, 0.0, 0.0]])
    summed, count = objective.loss(logits, labels)
    expected = torch.nn.functional.cross_entropy(logits[:2], torch.tensor([3, 1]), reduction="sum")
    assert int(count) == 2 and torch.allclose(summed, expected.reshape(1))
    predicted = objective.predictions(logits, labels)
    metrics = objective.compute_metrics([predicted.numpy()], [labels.numpy()])
    assert metrics == {"accuracy": 0.5, "predicted_tokens": 2}


def test_causal_loss_predicts_the_next_token_and_never_padding() -> None:
    objective = CausalLanguageModeling()
    labels = torch.tensor([[5, 6, 7, IGNORE_INDEX]])
    logits = torch.zeros(1, 4, 10)
    logits[0, 0, 6] = logits[0, 1, 2] = 9.0  # right at position 0 (6 follows 5), wrong at 1
    summed, count = objective.loss(logits, labels)
    assert int(count) == 2
    metrics = objective.compute_metrics([objective.predictions(logits, labels).numpy()], [labels.numpy()])
    assert metrics["accuracy"] == 0.5
