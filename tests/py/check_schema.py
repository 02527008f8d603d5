"""Check onnxq's protobuf schema against the ONNX specification's own descriptor.

Usage: python tests/py/check_schema.py DESCRIPTOR_SET.bin

DESCRIPTOR_SET.bin is the serialized FileDescriptorSet onnxq compiles from crates/onnxq-proto/proto/onnx.proto.
Every message, nested message, enum value and field of the `onnx` package's onnx-ml schema must exist in
ours with the same number, label, type, type name, oneof membership and packed flag, and ours must have
nothing extra. Prints "ok: ..." and exits 0, or lists every difference and exits 1.
"""
import sys

from google.protobuf import descriptor_pb2
from onnx import onnx_ml_pb2


def field_facts(f):
    return (f.number, f.label, f.type, f.type_name, f.oneof_index if f.HasField("oneof_index") else None,
            f.options.packed)


def index(file_proto):
    """Map 'Message.Nested.field' / 'Enum.VALUE' paths to comparable facts."""
    facts = {}

    def msg(m, prefix):
        path = f"{prefix}{m.name}"
        facts[path] = "message"
        for o in m.oneof_decl:
            facts[f"{path}.oneof {o.name}"] = "oneof"
        for f in m.field:
            facts[f"{path}.{f.name}"] = field_facts(f)
        for e in m.enum_type:
            enum(e, f"{path}.")
        for n in m.nested_type:
            msg(n, f"{path}.")

    def enum(e, prefix):
        for v in e.value:
            facts[f"{prefix}{e.name}.{v.name}"] = v.number

    for m in file_proto.message_type:
        msg(m, "")
    for e in file_proto.enum_type:
        enum(e, "")
    return facts


def main():
    fds = descriptor_pb2.FileDescriptorSet()
    with open(sys.argv[1], "rb") as f:
        fds.ParseFromString(f.read())
    ours = next(f for f in fds.file if f.package == "onnx")
    spec = descriptor_pb2.FileDescriptorProto()
    onnx_ml_pb2.DESCRIPTOR.CopyToProto(spec)
    a, b = index(spec), index(ours)
    problems = [f"missing: {k}" for k in a if k not in b]
    problems += [f"extra: {k}" for k in b if k not in a]
    problems += [f"differs: {k}: spec {a[k]} vs ours {b[k]}" for k in a if k in b and a[k] != b[k]]
    if ours.syntax not in ("", "proto2"):
        problems.append(f"syntax is {ours.syntax}, want proto2")
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"ok: {len(a)} messages, fields and enum values match onnx {onnx_ml_pb2.DESCRIPTOR.name}")


if __name__ == "__main__":
    main()
