//! The ranges file: a versioned JSON of per-tensor ranges, written by `onnxq calibrate` and read by
//! `onnxq quantize --ranges`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One tensor's calibrated range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TensorRange {
    /// Lowest value (float32, written exactly).
    pub min: f32,
    /// Highest value.
    pub max: f32,
}

/// The contents of a ranges file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ranges {
    /// Always "onnxq-ranges".
    pub format: String,
    /// Format version, 1.
    pub version: u32,
    /// The calibration method and its options, as given.
    pub method: String,
    /// The engine that ran the model.
    pub engine: String,
    /// How many samples were run.
    pub samples: usize,
    /// Range per tensor name.
    pub tensors: BTreeMap<String, TensorRange>,
}

impl Ranges {
    /// The current format version.
    pub const VERSION: u32 = 1;

    /// Parses and checks a ranges file's text.
    pub fn from_json(text: &str) -> Result<Ranges, String> {
        let r: Ranges =
            serde_json::from_str(text).map_err(|e| format!("not an onnxq ranges file: {e}"))?;
        if r.format != "onnxq-ranges" || r.version != Self::VERSION {
            return Err(format!(
                "ranges file format `{}` version {} is not `onnxq-ranges` version {}",
                r.format,
                r.version,
                Self::VERSION
            ));
        }
        if let Some((name, t)) = r
            .tensors
            .iter()
            .find(|(_, t)| !t.min.is_finite() || !t.max.is_finite() || t.min > t.max)
        {
            return Err(format!(
                "tensor `{name}` has an invalid range [{}, {}]",
                t.min, t.max
            ));
        }
        Ok(r)
    }
}
