//! The ranges file: a versioned JSON of per-tensor ranges, written by `onnxq calibrate` and read by
//! `onnxq quantize --ranges`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One tensor's calibrated range. Infinite bounds (an additive `-inf` attention mask) are real
/// observations and kept; JSON has no infinity, so they are written as the strings "-inf"/"inf".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TensorRange {
    /// Lowest value (float32, written exactly).
    #[serde(with = "json_f32")]
    pub min: f32,
    /// Highest value.
    #[serde(with = "json_f32")]
    pub max: f32,
}

/// float32 as a JSON number, or "inf" / "-inf" / "nan".
mod json_f32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f32(*v)
        } else if v.is_nan() {
            s.serialize_str("nan")
        } else if *v > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(f32),
        Text(String),
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Number(v) => Ok(v),
            Repr::Text(t) => match t.as_str() {
                "inf" => Ok(f32::INFINITY),
                "-inf" => Ok(f32::NEG_INFINITY),
                "nan" => Ok(f32::NAN),
                other => Err(serde::de::Error::custom(format!(
                    "`{other}` is not a number"
                ))),
            },
        }
    }
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
