//! ONNX protobuf types (`onnx.proto`, proto2, IR version 14 with the ONNX-ML extensions), generated
//! by prost from the schema in `proto/onnx.proto`.
//!
//! This crate holds no logic. Field presence is kept (proto2 `Option`s), so decoding and
//! re-encoding a model gives the same bytes, and every `bytes` field is a `bytes::Bytes` so that
//! tensor data decoded from a memory map is never copied.

#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

include!(concat!(env!("OUT_DIR"), "/onnx.rs"));

/// The compiled schema as a serialized `google.protobuf.FileDescriptorSet`, for checking the schema
/// against the ONNX specification's own descriptor.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/onnx_descriptor.bin"));
