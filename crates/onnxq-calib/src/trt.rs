//! TensorRT calibration tables in the three files ONNX Runtime's `write_calibration_table` writes
//! (reference §10), for the ORT TensorRT execution provider's `trt_int8_calibration_table_name`:
//! `calibration.json`, `calibration.flatbuffers` (`TrtTable { dict: [KeyValue { key, value }] }`,
//! entries in reverse-sorted key order as ORT builds them) and `calibration.cache`
//! (`<name> <value>` lines, sorted).
//!
//! The value is the tensor's dynamic range `max(|lowest|, |highest|)`. ORT writes
//! `max(highest, lowest)`, which is wrong for asymmetric ranges (-10..3 gives 3); onnxq writes 10.

use std::collections::BTreeMap;
use std::path::Path;

use flatbuffers::FlatBufferBuilder;

use crate::ranges::TensorRange;

/// A tensor's TensorRT dynamic range, written as ORT writes it (a Python float repr).
fn value(r: &TensorRange) -> String {
    python_repr(f64::from(r.min.abs().max(r.max.abs())))
}

/// Python's `repr(float)`: the shortest round-trip digits, fixed notation for exponents -4..16,
/// else `d.ddde-05` style.
fn python_repr(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "nan".into()
        } else if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // Rust's `{:e}` gives the same shortest round-trip digits: "6.960515975952148e0", "1e-5".
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = mantissa
        .strip_prefix('-')
        .map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        let fixed = if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{fixed}")
    } else {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        format!(
            "{sign}{m}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        )
    }
}

/// The three table files' contents: (json, flatbuffers, cache).
pub fn tables(ranges: &BTreeMap<String, TensorRange>) -> (String, Vec<u8>, String) {
    let mut json = serde_json::Map::new();
    for (name, r) in ranges {
        let array = |v: f32| serde_json::json!({ "data": [f64::from(v)], "dtype": "float32", "CLS": "numpy.array" });
        json.insert(name.clone(), serde_json::json!({ "lowest": array(r.min), "highest": array(r.max), "CLS": "TensorData" }));
    }
    let json = serde_json::Value::Object(json).to_string();

    let mut fb = FlatBufferBuilder::new();
    let entries: Vec<_> = ranges
        .iter()
        .rev()
        .map(|(name, r)| {
            let key = fb.create_string(name);
            let val = fb.create_string(&value(r));
            // table KeyValue { key: string (field 0); value: string (field 1) }
            let start = fb.start_table();
            fb.push_slot_always(4, key);
            fb.push_slot_always(6, val);
            fb.end_table(start)
        })
        .collect();
    let dict = fb.create_vector(&entries);
    // table TrtTable { dict: [KeyValue] (field 0) }
    let start = fb.start_table();
    fb.push_slot_always(4, dict);
    let root = fb.end_table(start);
    fb.finish_minimal(root);
    let flat = fb.finished_data().to_vec();

    let cache: String = ranges
        .iter()
        .map(|(name, r)| format!("{name} {}\n", value(r)))
        .collect();
    (json, flat, cache)
}

/// Writes the three files into `dir` (created if missing).
pub fn write_tables(dir: &Path, ranges: &BTreeMap<String, TensorRange>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let (json, flat, cache) = tables(ranges);
    std::fs::write(dir.join("calibration.json"), json)?;
    std::fs::write(dir.join("calibration.flatbuffers"), flat)?;
    std::fs::write(dir.join("calibration.cache"), cache)
}

#[cfg(test)]
mod tests {
    use super::python_repr;

    #[test]
    fn floats_print_as_python_does() {
        for (v, want) in [
            (6.960515975952148, "6.960515975952148"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (123456.0, "123456.0"),
            (1e16, "1e+16"),
            (2.5e-7, "2.5e-07"),
            (0.0, "0.0"),
            (f64::from(2.64f32), "2.640000104904175"),
        ] {
            assert_eq!(python_repr(v), want, "{v}");
        }
    }
}
