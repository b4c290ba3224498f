"""Tiny ONNX models built in the tests (the `onnx` package), for the agent to serve."""

from __future__ import annotations


def affine_model(scale: float = 2.0, offset: float = 1.0) -> bytes:
    """y = x * scale + offset, elementwise, on a float32 tensor x of shape [N, 3]."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "scale"], ["scaled"]), helper.make_node("Add", ["scaled", "offset"], ["y"])],
        "affine",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        initializer=[
            helper.make_tensor("scale", TensorProto.FLOAT, [], [scale]),
            helper.make_tensor("offset", TensorProto.FLOAT, [], [offset]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by every onnxruntime the agent extra allows
    return model.SerializeToString()
