"""int8 dynamic quantisation of an exported ONNX model with onnxruntime.

Dynamic quantisation stores weights as int8 and quantises activations on the fly, per batch.
Done naively (every op, one scale per tensor) it can wreck a small model: MiniLM's 384-wide
layers have weight columns of very different ranges, and its embeddings feed every layer.
The options here are the ones that keep a small encoder's accuracy:

- per_channel: one scale per output column of each weight, not one for the whole matrix;
- MatMul only, in the encoder's layers: the dense layers, where the time goes. Gather (the embedding
  lookups) stays float, so the embeddings are kept exactly; so do LayerNorm, softmax, and the pooler
  and head, which cost nothing next to the layers and turn the features into the decision;
- MatMulConstBOnly: only products with a constant weight, never attention's activation x activation;
- reduce_range off: 8 bits, not 7 (that is for old CPUs without VNNI, whose int8 path saturates).

The parity gate still checks the result: a model that loses accuracy anyway fails the export.
"""

from __future__ import annotations

import logging
from pathlib import Path

QUANTIZED_OPS = ["MatMul"]
# How exported node names mark the encoder's layers (BERT, RoBERTa, ELECTRA: encoder/layer.N; DistilBERT:
# transformer/layer.N); anything else (pooler, head) stays float.
LAYER_MARK = "/layer."


def quantize_int8(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # onnxruntime's quantiser logs a recommendation to pre-process on every call, at INFO and WARNING.
    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            source,
            target,
            op_types_to_quantize=QUANTIZED_OPS,
            nodes_to_quantize=layer_matmuls(source),
            per_channel=True,
            reduce_range=False,
            weight_type=QuantType.QInt8,
            extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        quiet.setLevel(level)


def layer_matmuls(path: Path) -> list[str] | None:
    """The MatMul nodes of the encoder's layers; None (all MatMuls) for a graph whose names do not show them."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    names = [node.name for node in graph.node if node.op_type == "MatMul" and LAYER_MARK in node.name]
    return names or None
