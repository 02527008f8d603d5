//! Compiles `proto/onnx.proto` with protox (pure Rust: no `protoc`, nothing downloaded) into prost
//! types. Every `bytes` field becomes `bytes::Bytes`, so decoding from a memory-mapped buffer slices
//! tensor data instead of copying it.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let descriptors = protox::compile(["onnx.proto"], ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("onnx_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    prost_build::Config::new()
        .bytes(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
