//! Command-line arguments (clap derive). The rest of the crate never parses argv itself.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// onnxq: quantize ONNX models for ONNX Runtime, fast, in bounded memory, on models of any size
#[derive(Debug, Parser)]
#[command(name = "onnxq", version, about, max_term_width = 100)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Describe a model: IR and opsets, inputs and outputs, ops, weights, external data, and which
    /// nodes a quantizer could touch
    Inspect(InspectArgs),
    /// Rewrite a model, moving large tensors (initializers and Constant values) to an external data
    /// file or back inline
    Repack(RepackArgs),
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The model file (.onnx); its external data is read from beside it
    pub(crate) model: PathBuf,
    /// Print JSON (for scripts) instead of text
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RepackArgs {
    /// The model file (.onnx) to read; it is never modified
    pub(crate) model: PathBuf,
    /// Where to write the new model (must differ from the input)
    #[arg(short, long)]
    pub(crate) output: PathBuf,
    /// Move tensors of at least --size-threshold bytes to FILE, a name relative to the output's
    /// folder [default FILE: <output file name>.data]
    #[arg(long, value_name = "FILE", num_args = 0..=1, conflicts_with = "inline")]
    pub(crate) external_data: Option<Option<String>>,
    /// Minimum tensor size in bytes to move to external data (at least 1024: ONNX Runtime cannot
    /// read small shape constants from external data)
    #[arg(long, value_name = "BYTES", default_value_t = onnxq_ir::DEFAULT_THRESHOLD)]
    pub(crate) size_threshold: u64,
    /// Put every tensor inline (a model that would pass protobuf's 2 GB limit still moves its
    /// largest tensors out). Without --inline or --external-data, the input's layout is kept
    #[arg(long)]
    pub(crate) inline: bool,
}
