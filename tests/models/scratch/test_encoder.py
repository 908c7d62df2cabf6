"""The from-scratch encoder is BERT: the same hidden states from the same weights, both ways."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

from tunesmith.models.backbones import resolve
from tunesmith.models.scratch import Encoder, EncoderConfig, from_bert_state_dict, to_bert_state_dict

TEXTS = ["a gorgeous, witty film", "dull", "the plot never quite comes together, but the cast is a joy to watch"]


def bundled() -> tuple[BertModel, dict]:
    folder = Path(resolve("minilm"))
    bert = AutoModel.from_pretrained(folder, trust_remote_code=False, attn_implementation="sdpa").eval()
    batch = AutoTokenizer.from_pretrained(folder)(TEXTS, padding=True, return_tensors="pt")
    return bert, dict(batch)


@pytest.mark.parametrize("attention", ["sdpa", "plain"])
def test_the_bundled_minilm_gives_berts_hidden_states_with_padding(attention: str) -> None:
    bert, batch = bundled()
    assert (batch["attention_mask"] == 0).any()  # the short texts are padded
    config = EncoderConfig.from_bert(bert.config, attention=attention)
    state = load_file(str(Path(resolve("minilm")) / "model.safetensors"))
    encoder = from_bert_state_dict(state, config).eval()
    with torch.no_grad():
        expected = bert(**batch)
        hidden, pooled = encoder(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    assert (hidden - expected.last_hidden_state).abs().max() <= 1e-5
    assert (pooled - expected.pooler_output).abs().max() <= 1e-5


def tiny_config(**overrides) -> EncoderConfig:
    return EncoderConfig(
        vocab_size=100, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64, max_positions=16, **overrides
    )


def test_a_saved_encoder_is_a_bert_that_plain_transformers_loads(tmp_path: Path) -> None:
    torch.manual_seed(0)
    encoder = Encoder(tiny_config()).eval()
    ids = torch.randint(1, 100, (2, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    bert = BertModel(
        BertConfig(
            vocab_size=100,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=16,
        )  # fmt: skip
    )
    bert.load_state_dict(to_bert_state_dict(encoder), strict=False)  # BertModel keeps a position_ids buffer too
    missing = set(bert.state_dict()) - set(to_bert_state_dict(encoder))
    assert missing <= {"embeddings.position_ids", "embeddings.token_type_ids"}
    bert.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path, trust_remote_code=False).eval()
    with torch.no_grad():
        hidden, pooled = encoder(ids, mask)
        theirs = reloaded(input_ids=ids, attention_mask=mask)
    assert (hidden - theirs.last_hidden_state).abs().max() <= 1e-5
    assert (pooled - theirs.pooler_output).abs().max() <= 1e-5
    # And back: the saved weights load into a fresh encoder that computes the same.
    again = from_bert_state_dict(load_file(str(tmp_path / "model.safetensors")), tiny_config()).eval()
    with torch.no_grad():
        assert torch.equal(again(ids, mask)[0], hidden)


def test_the_written_out_attention_is_sdpas() -> None:
    torch.manual_seed(0)
    fused = Encoder(tiny_config()).eval()
    plain = Encoder(tiny_config(attention="plain")).eval()
    plain.load_state_dict(fused.state_dict())
    ids, mask = torch.randint(1, 100, (3, 7)), torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] + [0] * 6])
    with torch.no_grad():
        assert torch.allclose(fused(ids, mask)[0], plain(ids, mask)[0], atol=1e-6)


def test_pre_norm_is_another_model_with_no_bert_equivalent() -> None:
    torch.manual_seed(0)
    post = Encoder(tiny_config()).eval()
    pre = Encoder(tiny_config(pre_norm=True)).eval()
    pre.load_state_dict(post.state_dict(), strict=False)  # all but the final norm
    ids = torch.randint(1, 100, (2, 5))
    with torch.no_grad():
        assert not torch.allclose(post(ids)[0], pre(ids)[0])
    with pytest.raises(ValueError, match="no BERT equivalent"):
        to_bert_state_dict(pre)


def test_a_checkpoint_missing_an_encoder_weight_is_refused_not_initialised() -> None:
    state = to_bert_state_dict(Encoder(tiny_config()))
    del state["encoder.layer.1.output.dense.weight"]
    with pytest.raises(
        KeyError, match=r"encoder.layer.1.output.dense.weight \(for layers.1.feed_forward.down.weight\)"
    ):
        from_bert_state_dict(state, tiny_config())
