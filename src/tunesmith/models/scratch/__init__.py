"""A Transformer encoder written from its parts, weight-compatible with BERT (encoder.py)."""

from tunesmith.models.scratch.encoder import Encoder, EncoderConfig, from_bert_state_dict, to_bert_state_dict

__all__ = ["Encoder", "EncoderConfig", "from_bert_state_dict", "to_bert_state_dict"]
