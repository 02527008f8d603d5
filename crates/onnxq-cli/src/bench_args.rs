//! The arguments of `onnxq bench`, apart from the command so that `args.rs` can name them
//! without importing what the command runs on (no import cycle).

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// The models to time (.onnx); the first is the one the others are compared with
    #[arg(required = true, num_args = 1..)]
    pub(crate) models: Vec<PathBuf>,
    /// Sample inputs: a .npz (keys = input names, first axis = samples), or a folder of .npz /
    /// .npy samples or ONNX test-data folders
    #[arg(long, num_args = 1.., required = true)]
    pub(crate) data: Vec<PathBuf>,
    /// Samples cycled through: round r feeds sample r mod N to every model
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub(crate) samples: usize,
    /// Intra-op threads of each session (0: ONNX Runtime's default, one per core)
    #[arg(long, default_value_t = 1)]
    pub(crate) threads: usize,
    /// Timed runs of each model
    #[arg(long, default_value_t = 40, value_name = "N")]
    pub(crate) runs: usize,
    /// Untimed runs of each model first
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub(crate) warmup: usize,
    /// libonnxruntime to load (else ORT_DYLIB_PATH, then the Python package's)
    #[arg(long, value_name = "FILE")]
    pub(crate) ort_lib: Option<PathBuf>,
    /// Write the results as JSON (schema `onnxq-bench/1`)
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
}
