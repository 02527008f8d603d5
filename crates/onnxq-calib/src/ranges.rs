//! The ranges file: a versioned JSON of per-tensor ranges, written by `onnxq calibrate` and read
//! back by [`Ranges::from_json`] for static quantization's `--ranges`.
//!
//! Every range in `tensors` is a real interval: `min <= max`, no NaN (infinite bounds are real
//! observations). A tensor calibration could give no range (no value observed: empty or NaN in
//! every sample; infinite values for a histogram) is not in `tensors` but in `skipped`, with the
//! reason; static quantization leaves it in float. `--data` quantizes from the same [`Ranges`]
//! value, so both ways give one model.
//!
//! Version 2 adds `model`, the [`ModelId`] of the model calibrated, so `--ranges` can refuse a
//! file made for another model. Version 1 files (earlier onnxq) have none and stay readable.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::fingerprint::ModelId;

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
    /// Distribution method: mean and standard deviation of the values (for float8 scales).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_std: Option<(f64, f64)>,
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
    /// Format version: 2 (1 for files without `model`, from earlier onnxq versions).
    pub version: u32,
    /// The calibration method and its options, as given.
    pub method: String,
    /// The engine that ran the model.
    pub engine: String,
    /// How many samples were run.
    pub samples: usize,
    /// The model calibrated (version 2; `None` in version 1 files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelId>,
    /// Range per tensor name.
    pub tensors: BTreeMap<String, TensorRange>,
    /// Tensors the method could not calibrate, with the reason (they have no range).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub skipped: BTreeMap<String, String>,
}

/// How earlier onnxq versions wrote a tensor with no value observed: the reductions' `[inf, -inf]`
/// of an empty tensor, or `[nan, nan]` (NaN in every sample). Neither is the range of any values,
/// so reading it as "no range" is exact, and gives the model the current `--data` gives.
fn legacy_no_values(t: &TensorRange) -> bool {
    (t.min == f32::INFINITY && t.max == f32::NEG_INFINITY) || (t.min.is_nan() && t.max.is_nan())
}

impl Ranges {
    /// The current format version.
    pub const VERSION: u32 = 2;
    /// The oldest version still read (no `model` field).
    pub const OLDEST_VERSION: u32 = 1;

    /// Parses and checks a ranges file's text. A tensor written the legacy way with no value
    /// observed (see [`legacy_no_values`]) moves to `skipped`.
    pub fn from_json(text: &str) -> Result<Ranges, String> {
        let mut r: Ranges =
            serde_json::from_str(text).map_err(|e| format!("not an onnxq ranges file: {e}"))?;
        if r.format != "onnxq-ranges"
            || !(Self::OLDEST_VERSION..=Self::VERSION).contains(&r.version)
        {
            return Err(format!(
                "ranges file format `{}` version {} is not `onnxq-ranges` version {} to {}",
                r.format,
                r.version,
                Self::OLDEST_VERSION,
                Self::VERSION
            ));
        }
        // Version 2 always records its model; one without is not a file onnxq wrote.
        if r.version >= 2 && r.model.is_none() {
            return Err(format!(
                "a version {} ranges file must name its model (`model`)",
                r.version
            ));
        }
        let legacy: Vec<String> = r
            .tensors
            .iter()
            .filter(|(_, t)| legacy_no_values(t))
            .map(|(name, _)| name.clone())
            .collect();
        for name in legacy {
            if let Some(t) = r.tensors.remove(&name) {
                r.skipped.insert(
                    name,
                    format!(
                        "no values observed (written as [{}, {}] by an earlier onnxq)",
                        t.min, t.max
                    ),
                );
            }
        }
        if let Some((name, t)) = r
            .tensors
            .iter()
            .find(|(_, t)| t.min.is_nan() || t.max.is_nan() || t.min > t.max)
        {
            return Err(format!(
                "tensor `{name}` has an invalid range [{}, {}] (a NaN bound, or min above max); \
                 calibrate again to rewrite the file",
                t.min, t.max
            ));
        }
        if let Some(name) = r.tensors.keys().find(|n| r.skipped.contains_key(*n)) {
            return Err(format!(
                "tensor `{name}` is listed both with a range and under `skipped`"
            ));
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_exact_floats_and_infinities() {
        let mut tensors = BTreeMap::new();
        tensors.insert(
            "mask".to_owned(),
            TensorRange {
                min: f32::NEG_INFINITY,
                max: 0.1,
                avg_std: None,
            },
        );
        tensors.insert(
            "x".to_owned(),
            TensorRange {
                min: -2.117_904,
                max: 2.64,
                avg_std: None,
            },
        );
        let r = Ranges {
            format: "onnxq-ranges".into(),
            version: 2,
            method: "minmax".into(),
            engine: "e".into(),
            samples: 3,
            model: Some(ModelId {
                file: "m.onnx".into(),
                tensor_names: "0123abcd".into(),
                weights_crc32: "89abcdef".into(),
                weight_bytes: 12,
            }),
            tensors,
            skipped: BTreeMap::new(),
        };
        let text = serde_json::to_string(&r).unwrap_or_default();
        assert!(text.contains("\"-inf\""), "{text}");
        assert_eq!(Ranges::from_json(&text), Ok(r));
    }

    #[test]
    fn rejects_other_formats_and_bad_ranges() {
        assert!(Ranges::from_json("{}").is_err());
        let bad = r#"{"format":"onnxq-ranges","version":1,"method":"m","engine":"e","samples":1,"tensors":{"t":{"min":2.0,"max":1.0}}}"#;
        assert!(Ranges::from_json(bad).unwrap_err().contains("`t`"));
        let future = bad.replace("\"version\":1", "\"version\":3");
        assert!(
            Ranges::from_json(&future)
                .unwrap_err()
                .contains("version 3")
        );
        // Version 2 without its model is not a file onnxq wrote.
        let unbound = r#"{"format":"onnxq-ranges","version":2,"method":"m","engine":"e","samples":1,"tensors":{}}"#;
        assert!(Ranges::from_json(unbound).unwrap_err().contains("`model`"));
    }

    #[test]
    fn legacy_no_value_markers_move_to_skipped() {
        let text = r#"{"format":"onnxq-ranges","version":1,"method":"m","engine":"e","samples":1,"tensors":{"empty":{"min":"inf","max":"-inf"},"nan":{"min":"nan","max":"nan"},"x":{"min":-1.0,"max":1.0}}}"#;
        let r = Ranges::from_json(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.tensors.keys().collect::<Vec<_>>(), ["x"]);
        assert_eq!(r.skipped.keys().collect::<Vec<_>>(), ["empty", "nan"]);
        // Only the exact markers: a half-NaN or a finite crossed range is still an error.
        for bad in [
            r#"{"min":"nan","max":1.0}"#,
            r#"{"min":3.4028235e38,"max":-3.4028235e38}"#,
        ] {
            let t = text.replace(r#"{"min":-1.0,"max":1.0}"#, bad);
            assert!(Ranges::from_json(&t).unwrap_err().contains("`x`"), "{bad}");
        }
    }

    #[test]
    fn rejects_a_tensor_both_ranged_and_skipped() {
        let text = r#"{"format":"onnxq-ranges","version":1,"method":"m","engine":"e","samples":1,"tensors":{"x":{"min":-1.0,"max":1.0}},"skipped":{"x":"why"}}"#;
        assert!(Ranges::from_json(text).unwrap_err().contains("both"));
    }
}
