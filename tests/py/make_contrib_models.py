"""Write small float models for the dynamic-quantization ops the corpus lacks, with feeds.

Usage: python tests/py/make_contrib_models.py OUT_DIR

Writes OUT_DIR/<name>.onnx and OUT_DIR/<name>.npz (key = graph input name, first axis = sample) for:
  lstm       bidirectional ONNX LSTM with initializer W, R, B (opset 14)
  attention  com.microsoft Attention (4 heads, hidden 16) with a mask_index input
  embed      com.microsoft EmbedLayerNormalization (vocab 50, hidden 16) with a mask
Weights come from a seeded generator, so the files are the same on every run.
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper, save

rng = np.random.default_rng(7)


def f32(*shape, scale=0.5):
    return (rng.normal(size=shape) * scale).astype(np.float32)


def model(name, nodes, inputs, outputs, inits, feeds, out_dir, ms=False):
    opsets = [helper.make_opsetid("", 14)] + ([helper.make_opsetid("com.microsoft", 1)] if ms else [])
    g = helper.make_graph(nodes, name, inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    save(helper.make_model(g, opset_imports=opsets, ir_version=8), os.path.join(out_dir, f"{name}.onnx"))
    np.savez(os.path.join(out_dir, f"{name}.npz"), **feeds)


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    d, h, i, t, n = 2, 8, 6, 5, 4
    model("lstm", [helper.make_node("LSTM", ["x", "W", "R", "B"], ["y", "y_h"], name="lstm", hidden_size=h,
                                    direction="bidirectional")],
          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [t, 1, i])],
          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [t, d, 1, h]),
           helper.make_tensor_value_info("y_h", TensorProto.FLOAT, [d, 1, h])],
          {"W": f32(d, 4 * h, i), "R": f32(d, 4 * h, h), "B": f32(d, 8 * h, scale=0.1)},
          {"x": f32(n, t, 1, i, scale=1.0)}, out_dir)

    hid, seq = 16, 6
    model("attention", [helper.make_node("Attention", ["x", "w", "b", "mask"], ["y"], name="attn", domain="com.microsoft",
                                         num_heads=4)],
          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, seq, hid]),
           helper.make_tensor_value_info("mask", TensorProto.INT32, [1])],
          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, seq, hid])],
          {"w": f32(hid, 3 * hid), "b": f32(3 * hid, scale=0.1)},
          {"x": f32(n, 1, seq, hid, scale=1.0), "mask": np.full((n, 1), seq, np.int32)}, out_dir, ms=True)

    vocab = 50
    model("embed", [helper.make_node("EmbedLayerNormalization", ["ids", "seg", "word", "pos", "segemb", "gamma", "beta",
                                                                  "mask"], ["y", "mask_index"], name="emb",
                                     domain="com.microsoft", epsilon=1e-12)],
          [helper.make_tensor_value_info("ids", TensorProto.INT32, [1, seq]),
           helper.make_tensor_value_info("seg", TensorProto.INT32, [1, seq]),
           helper.make_tensor_value_info("mask", TensorProto.INT32, [1, seq])],
          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, seq, hid]),
           helper.make_tensor_value_info("mask_index", TensorProto.INT32, [1])],
          {"word": f32(vocab, hid), "pos": f32(seq, hid), "segemb": f32(2, hid), "gamma": 1 + f32(hid, scale=0.1),
           "beta": f32(hid, scale=0.1)},
          {"ids": rng.integers(0, vocab, (n, 1, seq)).astype(np.int32),
           "seg": rng.integers(0, 2, (n, 1, seq)).astype(np.int32), "mask": np.ones((n, 1, seq), np.int32)},
          out_dir, ms=True)


if __name__ == "__main__":
    main(sys.argv[1])
