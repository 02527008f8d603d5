"""Write tiny models at old opsets, each holding ops whose meaning changed before opset 21, for the tests of
onnxq's opset converter (crates/onnxq-quant/src/upgrade/).

Usage: python tests/py/make_upgrade_models.py OUTDIR

Writes OUTDIR/<case>.onnx (and OUTDIR/<case>.before.onnx where the original cannot run in ONNX Runtime: the
reference to compare with) and prints "<case> <expect>" per line: expect is "ok" (the converted model must give
ONNX Runtime's outputs of the original) or "refuse" (onnxq must refuse the conversion, naming the node). Every
model reads float inputs named x* (random normal data in the comparison) and passes onnx.checker's full check at
its own opset.
"""
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper, numpy_helper

F = T.FLOAT


def vi(name, shape, t=F):
    return helper.make_tensor_value_info(name, t, shape)


def model(opset, nodes, inputs, outputs, inits=(), check=True):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=5 if opset <= 10 else 7)
    if check:
        onnx.checker.check_model(m, full_check=True)
    return m


def node(op, ins, outs, name=None, **attrs):
    return helper.make_node(op, ins, outs, name=name or f"{op.lower()}_0", **attrs)


def const(name, a):
    return numpy_helper.from_array(np.asarray(a), name)


def softmax_cases():
    for op in ("Softmax", "LogSoftmax", "Hardmax"):
        # axis 1 of a rank-3 input: before 13, the input was flattened to [2, 12].
        yield f"{op.lower()}11_axis1", model(11, [node(op, ["x"], ["y"], axis=1)], [vi("x", [2, 3, 4])], [vi("y", [2, 3, 4])])
    # The default axis (1) on rank 2 means the last axis; unchanged but written out.
    yield "softmax12_rank2", model(12, [node("Softmax", ["x"], ["y"])], [vi("x", [3, 5])], [vi("y", [3, 5])])
    # An input of undeclared rank (the Relu's output has no value_info): the rank-free rewrite.
    yield "softmax10_unknown_rank", model(
        10, [node("Relu", ["x"], ["r"]), node("Softmax", ["r"], ["y"], axis=2)], [vi("x", [2, 3, 4, 5])], [vi("y", [2, 3, 4, 5])]
    )
    yield "softmax11_last", model(11, [node("Softmax", ["x"], ["y"], axis=-1)], [vi("x", [2, 3, 4])], [vi("y", [2, 3, 4])])


def attribute_cases():
    yield "clip10", model(10, [node("Clip", ["x"], ["y"], min=-0.5, max=0.7)], [vi("x", [4, 6])], [vi("y", [4, 6])])
    yield "clip10_max_only", model(10, [node("Clip", ["x"], ["y"], max=0.2)], [vi("x", [4, 6])], [vi("y", [4, 6])])
    yield "clip10_fp16", model(
        10, [node("Clip", ["x"], ["y"], min=-0.25, max=0.5)], [vi("x", [4, 6], T.FLOAT16)], [vi("y", [4, 6], T.FLOAT16)]
    )
    yield "pad10_constant", model(
        10, [node("Pad", ["x"], ["y"], pads=[0, 1, 2, 0, 2, 1], value=1.5)], [vi("x", [2, 3, 4])], [vi("y", [2, 6, 7])]
    )
    yield "pad10_reflect", model(
        10, [node("Pad", ["x"], ["y"], pads=[0, 1, 0, 2], mode="reflect")], [vi("x", [3, 4])], [vi("y", [3, 7])]
    )
    yield "split11_attr", model(
        11, [node("Split", ["x"], ["y", "z"], axis=1, split=[1, 3])], [vi("x", [2, 4])], [vi("y", [2, 1]), vi("z", [2, 3])]
    )
    yield "split12_equal", model(11, [node("Split", ["x"], ["y", "z"], axis=-1)], [vi("x", [2, 6])], [vi("y", [2, 3]), vi("z", [2, 3])])
    yield "squeeze11", model(11, [node("Squeeze", ["x"], ["y"], axes=[1])], [vi("x", [3, 1, 4])], [vi("y", [3, 4])])
    yield "squeeze11_all", model(11, [node("Squeeze", ["x"], ["y"])], [vi("x", [3, 1, 4, 1])], [vi("y", [3, 4])])
    yield "unsqueeze11", model(11, [node("Unsqueeze", ["x"], ["y"], axes=[0, -1])], [vi("x", [3, 4])], [vi("y", [1, 3, 4, 1])])
    yield "reducesum12", model(12, [node("ReduceSum", ["x"], ["y"], axes=[1], keepdims=0)], [vi("x", [3, 4, 5])], [vi("y", [3, 5])])
    yield "reducemean13", model(13, [node("ReduceMean", ["x"], ["y"], axes=[-1])], [vi("x", [3, 4, 5])], [vi("y", [3, 4, 1])])
    yield "reducemax17_axes", model(17, [node("ReduceMax", ["x"], ["y"], axes=[0, 2])], [vi("x", [3, 4, 5])], [vi("y", [1, 4, 1])])
    yield "reducel2_17_all", model(17, [node("ReduceL2", ["x"], ["y"], keepdims=0)], [vi("x", [3, 4])], [vi("y", [])])
    yield "dropout11", model(11, [node("Dropout", ["x"], ["y"], ratio=0.3)], [vi("x", [3, 4])], [vi("y", [3, 4])])
    yield "dft17", model(
        17, [node("DFT", ["x"], ["y"], axis=1, onesided=0)], [vi("x", [2, 8, 1])], [vi("y", [2, 8, 2])]
    )


def replaced_op_cases():
    scales = const("scales", np.array([1, 1, 2, 3], np.float32))
    for mode in ("nearest", "linear"):
        yield f"resize10_{mode}", model(
            10, [node("Resize", ["x", "scales"], ["y"], mode=mode)], [vi("x", [1, 2, 3, 4])], [vi("y", [1, 2, 6, 12])], [scales]
        )
    down = const("scales", np.array([1, 1, 0.5, 0.5], np.float32))
    yield "resize10_nearest_down", model(
        10, [node("Resize", ["x", "scales"], ["y"], mode="nearest")], [vi("x", [1, 2, 6, 8])], [vi("y", [1, 2, 3, 4])], [down]
    )
    # Upsample is deprecated at opset 10, so the checker and ONNX Runtime refuse it there (written unchecked);
    # the same node at opset 9 is what the converted model must match.
    up = ([node("Upsample", ["x", "scales"], ["y"], mode="nearest")], [vi("x", [1, 2, 3, 4])], [vi("y", [1, 2, 6, 12])], [scales])
    yield "upsample10", model(10, *up, check=False)
    yield "upsample10.before", model(9, *up)
    idx = const("idx", np.array([[1, 0], [2, 3], [0, 0]], np.int64))
    yield "scatter10", model(
        10, [node("Scatter", ["x", "idx", "upd"], ["y"], axis=1)], [vi("x", [3, 4]), vi("upd", [3, 2])], [vi("y", [3, 4])], [idx]
    )
    rois = const("rois", np.array([[0, 0, 3, 3], [1, 1, 4, 5]], np.float32))
    bidx = const("bidx", np.array([0, 0], np.int64))
    yield "roialign10", model(
        10, [node("RoiAlign", ["x", "rois", "bidx"], ["y"], output_height=2, output_width=2, sampling_ratio=2)],
        [vi("x", [1, 2, 6, 6])], [vi("y", [2, 2, 2, 2])], [rois, bidx],
    )
    yield "gridsample16", model(
        16, [node("GridSample", ["x", "xgrid"], ["y"], mode="bilinear", align_corners=1)],
        [vi("x", [1, 2, 4, 4]), vi("xgrid", [1, 3, 3, 2])], [vi("y", [1, 2, 3, 3])],
    )
    bn = [const(n, np.linspace(0.5, 1.5, 3).astype(np.float32)) for n in ("s", "b", "mean", "var")]
    yield "batchnorm13", model(13, [node("BatchNormalization", ["x", "s", "b", "mean", "var"], ["y"])], [vi("x", [2, 3, 4])], [vi("y", [2, 3, 4])], bn)


def compatible_and_nested_cases():
    w = const("w", np.random.default_rng(0).standard_normal((4, 2, 3, 3)).astype(np.float32))
    k = const("k", np.array([2], np.int64))
    yield "compatible10", model(
        10,
        [node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), node("Relu", ["c"], ["r"]), node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2]),
         node("Flatten", ["p"], ["f"]), node("TopK", ["f", "k"], ["y", "i"])],
        [vi("x", [1, 2, 6, 6])], [vi("y", [1, 2]), vi("i", [1, 2], T.INT64)], [w, k],
    )
    then = helper.make_graph(
        [node("Softmax", ["x"], ["t"], name="then_softmax", axis=1), node("Unsqueeze", ["t"], ["then_y"], name="then_unsq", axes=[0])],
        "then", [], [vi("then_y", [1, 2, 3, 4])],
    )
    els = helper.make_graph([node("Unsqueeze", ["x"], ["else_y"], name="else_unsq", axes=[0])], "else", [], [vi("else_y", [1, 2, 3, 4])])
    zero = const("zero", np.array(0, np.float32))
    yield "subgraph11", model(
        11,
        [node("ReduceSum", ["x"], ["s"], keepdims=0), node("Greater", ["s", "zero"], ["c"]),
         node("If", ["c"], ["y"], then_branch=then, else_branch=els)],
        [vi("x", [2, 3, 4])], [vi("y", [1, 2, 3, 4])], [zero],
    )


def refused_cases():
    gn = [const(n, np.ones(2, np.float32)) for n in ("gs", "gb")]
    yield "opset9", model(9, [node("Relu", ["x"], ["y"])], [vi("x", [2])], [vi("y", [2])])
    # The mask of an inference-mode Dropout changes value at opset 12 (all false in ORT before, all true after).
    yield "dropout11_mask", model(
        11, [node("Dropout", ["x"], ["y", "mask"], name="drop", ratio=0.3)], [vi("x", [3, 4])],
        [vi("y", [3, 4]), vi("mask", [3, 4], T.BOOL)],
    )
    yield "groupnorm18", model(
        18, [node("GroupNormalization", ["x", "gs", "gb"], ["y"], name="gn", num_groups=2)], [vi("x", [1, 4, 3])], [vi("y", [1, 4, 3])], gn,
        check=False,  # deprecated since opset 21, so today's checker refuses it
    )
    sizes = const("sizes", np.array([1, 2, 6, 8], np.int64))
    roi = const("roi", np.array([], np.float32))
    sc = const("sc", np.array([], np.float32))
    yield "resize11_tf_half_pixel", model(
        11, [node("Resize", ["x", "roi", "sc", "sizes"], ["y"], name="rs", mode="nearest", coordinate_transformation_mode="tf_half_pixel_for_nn")],
        [vi("x", [1, 2, 3, 4])], [vi("y", [1, 2, 6, 8])], [roi, sc, sizes],
    )
    bn = [const(n, np.linspace(0.5, 1.5, 3).astype(np.float32)) for n in ("s", "b", "mean", "var")]
    yield "batchnorm13_training", model(
        13, [node("BatchNormalization", ["x", "s", "b", "mean", "var"], ["y", "rm", "rv"], name="bn")],
        [vi("x", [2, 3, 4])], [vi("y", [2, 3, 4]), vi("rm", [3]), vi("rv", [3])], bn, check=False,
    )


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    groups = [(softmax_cases, "ok"), (attribute_cases, "ok"), (replaced_op_cases, "ok"), (compatible_and_nested_cases, "ok"), (refused_cases, "refuse")]
    for make, expect in groups:
        for name, m in make():
            onnx.save(m, out / f"{name}.onnx")
            if ".before" not in name:
                print(name, expect)


if __name__ == "__main__":
    main()
