//! Whether calibration samples fit the model's inputs: names, element types (float64 is cast to
//! a float32 input, with a note), ranks, fixed dimensions and symbolic dimensions consistent
//! within a sample; and how a stacked array splits into samples.
//!
//! These checks run on array headers when the samples are opened, before any engine sees a
//! sample: ONNX Runtime refuses a sample that does not fit, but tract runs whatever it is given
//! (a `[1, 1, 9, 9]` sample through an `[1, 1, 8, 8]` input), so the check cannot be left to the
//! engine. Every message names the file, the array and the sample, and its hint the layout wanted.

use std::collections::BTreeMap;
use std::fmt;

/// One dimension of a declared model input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A symbolic size (`batch`): any size, the same wherever the name appears in one sample.
    Named(String),
    /// Any size (no value, or an unnamed or `?` parameter).
    Unknown,
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Named(s) => f.write_str(s),
            Dim::Unknown => f.write_str("?"),
        }
    }
}

/// The declared type of a model input, for checking samples.
#[derive(Debug, Clone)]
pub struct InputSpec {
    /// Input name.
    pub name: String,
    /// ONNX element type code (1 = float32, 7 = int64, ...), 0 if undeclared.
    pub elem_type: i32,
    /// Declared dimensions, if the shape is declared.
    pub dims: Option<Vec<Dim>>,
}

impl InputSpec {
    /// Declared rank, if the shape is declared.
    pub fn rank(&self) -> Option<usize> {
        self.dims.as_ref().map(Vec::len)
    }

    /// The declared shape as `[batch, 3, 224, 224]`, or `[...]` if undeclared; with `samples`,
    /// a sample axis `N` in front.
    fn shape_text(&self, samples: bool) -> String {
        let mut parts: Vec<String> = match &self.dims {
            Some(d) => d.iter().map(ToString::to_string).collect(),
            None => vec!["...".to_owned()],
        };
        if samples {
            parts.insert(0, "N".to_owned());
        }
        format!("[{}]", parts.join(", "))
    }
}

/// A calibration-data problem: the message names the file, the array and the sample; the hint,
/// when there is one, says what layout or type was expected.
#[derive(Debug, Clone, PartialEq)]
pub struct DataError {
    /// What is wrong, and where.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl From<String> for DataError {
    fn from(message: String) -> DataError {
        DataError {
            message,
            hint: None,
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn hinted(message: String, hint: String) -> DataError {
    DataError {
        message,
        hint: Some(hint),
    }
}

/// The layouts a stacked archive takes for `spec`, for hints.
fn stacked_layouts(spec: &InputSpec) -> String {
    let mut text = format!(
        "a .npz array `{}` of shape {} (N samples)",
        spec.name,
        spec.shape_text(true)
    );
    if let Some(d) = &spec.dims
        && d.len() > 1
        && batch_like(&d[0])
    {
        let rest: Vec<String> = d[1..].iter().map(ToString::to_string).collect();
        text += &format!(" or [N, {}] (N samples of batch 1)", rest.join(", "));
    }
    text
}

/// Whether a first dimension reads as a batch axis a stacked `[N, ...]` array can fill with 1.
fn batch_like(d: &Dim) -> bool {
    !matches!(d, Dim::Fixed(n) if *n != 1)
}

/// The per-sample dims of a stacked array of shape `dims` (`what` names the file and array) fed
/// to `spec`: `[N, ...input dims]` is N samples, and so is `[N, ...input dims but the first]` when
/// the input's first dimension is 1 or symbolic (a batch axis): each sample is then `[1, ...]`.
/// Without a declared shape, the first axis indexes samples.
pub(crate) fn sample_dims(
    spec: Option<&InputSpec>,
    dims: &[usize],
    what: &str,
) -> Result<Vec<usize>, DataError> {
    let Some((_, rest)) = dims.split_first() else {
        return Err(hinted(
            format!("{what} is a scalar, with no sample axis"),
            "a stacked .npz holds one array per model input whose first axis indexes samples"
                .to_owned(),
        ));
    };
    let Some((spec, model_dims)) = spec.and_then(|s| s.dims.as_ref().map(|d| (s, d))) else {
        return Ok(rest.to_vec());
    };
    if dims.len() == model_dims.len() + 1 {
        return Ok(rest.to_vec());
    }
    if dims.len() == model_dims.len() && !model_dims.is_empty() && batch_like(&model_dims[0]) {
        let mut one = vec![1];
        one.extend_from_slice(rest);
        return Ok(one);
    }
    Err(hinted(
        format!(
            "{what} has shape {dims:?}, which does not split into samples of model input `{}` {}",
            spec.name,
            spec.shape_text(false)
        ),
        format!("give {}", stacked_layouts(spec)),
    ))
}

/// numpy's name of an ONNX element type, for the cast a hint asks for.
fn numpy_name(code: i32) -> String {
    match code {
        1 => "float32".into(),
        2 => "uint8".into(),
        3 => "int8".into(),
        6 => "int32".into(),
        7 => "int64".into(),
        9 => "bool".into(),
        10 => "float16".into(),
        11 => "float64".into(),
        other => onnxq_ir::DataType(other).to_string(),
    }
}

/// One array of a sample, as the checks see it.
pub(crate) struct ArrayInfo<'a> {
    /// The array's name (the model input it feeds).
    pub key: &'a str,
    /// Its per-sample dims.
    pub dims: &'a [usize],
    /// Its ONNX element type code.
    pub elem_type: i32,
}

/// What the checks found acceptable but worth saying: an input whose data is cast.
pub(crate) type Casts = BTreeMap<String, String>;

/// Checks one sample (`at` names it: file, sample index) against the model's inputs: every input
/// has an array, of its type (float64 for a float32 input is cast: recorded in `casts`, input →
/// where), rank and fixed dims, and a symbolic dim has one size across the sample.
pub(crate) fn fit(
    inputs: &[InputSpec],
    at: &str,
    arrays: &[ArrayInfo<'_>],
    casts: &mut Casts,
) -> Result<(), DataError> {
    let mut named: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    for spec in inputs {
        let Some(a) = arrays.iter().find(|a| a.key == spec.name) else {
            let keys: Vec<&str> = arrays.iter().map(|a| a.key).collect();
            return Err(hinted(
                format!(
                    "calibration data {at} has no array for model input `{}` (it has {keys:?})",
                    spec.name
                ),
                format!(
                    "name each array after the model input it feeds ({})",
                    inputs
                        .iter()
                        .map(|s| format!("`{}`", s.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        let here = format!("calibration data {at}, array `{}`", a.key);
        if spec.elem_type != 0 && a.elem_type != spec.elem_type {
            if a.elem_type == 11 && spec.elem_type == 1 {
                casts.entry(spec.name.clone()).or_insert(here.clone());
            } else {
                let want = numpy_name(spec.elem_type);
                return Err(hinted(
                    format!(
                        "{here} is {}, model input `{}` is {want}",
                        numpy_name(a.elem_type),
                        spec.name
                    ),
                    format!("cast the data before saving it: `x.astype(np.{want})`"),
                ));
            }
        }
        let Some(want) = &spec.dims else { continue };
        let wrong = |why: String| {
            hinted(
                format!(
                    "{here} has shape {:?}, model input `{}` is {}: {why}",
                    a.dims,
                    spec.name,
                    spec.shape_text(false)
                ),
                format!(
                    "give samples of shape {}: {}, or one-sample .npz / .npy files of that shape",
                    spec.shape_text(false),
                    stacked_layouts(spec)
                ),
            )
        };
        if a.dims.len() != want.len() {
            return Err(wrong(format!(
                "rank {} where the model wants {}",
                a.dims.len(),
                want.len()
            )));
        }
        for (axis, (&got, d)) in a.dims.iter().zip(want).enumerate() {
            match d {
                Dim::Fixed(n) if *n != got => {
                    return Err(wrong(format!(
                        "dim {axis} is {got}, the model fixes it at {n}"
                    )));
                }
                Dim::Named(name) => match named.get(name.as_str()) {
                    Some(&(size, input)) if size != got => {
                        return Err(wrong(format!(
                            "dim {axis} (`{name}`) is {got}, but `{name}` is {size} in `{input}`"
                        )));
                    }
                    _ => {
                        named
                            .entry(name.as_str())
                            .or_insert((got, spec.name.as_str()));
                    }
                },
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, dims: Vec<Dim>) -> InputSpec {
        InputSpec {
            name: name.into(),
            elem_type: 1,
            dims: Some(dims),
        }
    }

    #[test]
    fn stacked_arrays_split_with_or_without_a_batch_axis() {
        use Dim::*;
        let s = spec("x", vec![Fixed(1), Fixed(3), Fixed(4)]);
        assert_eq!(sample_dims(Some(&s), &[5, 1, 3, 4], "a"), Ok(vec![1, 3, 4]));
        assert_eq!(sample_dims(Some(&s), &[5, 3, 4], "a"), Ok(vec![1, 3, 4]));
        let dynamic = spec("x", vec![Named("batch".into()), Fixed(3)]);
        assert_eq!(sample_dims(Some(&dynamic), &[7, 3], "a"), Ok(vec![1, 3]));
        // A fixed batch of 2 has no batch-1 reading: the sample axis must be explicit.
        let two = spec("x", vec![Fixed(2), Fixed(3)]);
        let e = sample_dims(Some(&two), &[7, 3], "a").unwrap_err();
        assert!(e.message.contains("[7, 3]"), "{e}");
        assert!(e.hint.unwrap_or_default().contains("[N, 2, 3]"));
        assert_eq!(sample_dims(None, &[7, 3], "a"), Ok(vec![3]));
    }

    #[test]
    fn fit_checks_fixed_dims_and_symbolic_consistency() {
        use Dim::*;
        let ids = spec("ids", vec![Named("batch".into()), Named("seq".into())]);
        let mask = spec("mask", vec![Named("batch".into()), Named("seq".into())]);
        let inputs = [ids, mask];
        let arr = |key, dims| ArrayInfo {
            key,
            dims,
            elem_type: 1,
        };
        let mut casts = Casts::new();
        assert!(
            fit(
                &inputs,
                "s",
                &[arr("ids", &[1, 5]), arr("mask", &[1, 5])],
                &mut casts
            )
            .is_ok()
        );
        let e = fit(
            &inputs,
            "s",
            &[arr("ids", &[1, 5]), arr("mask", &[1, 6])],
            &mut casts,
        )
        .unwrap_err();
        assert!(e.message.contains("`seq` is 5 in `ids`"), "{e}");
        let fixed = [spec("x", vec![Fixed(1), Fixed(8)])];
        let e = fit(&fixed, "s", &[arr("x", &[1, 9])], &mut casts).unwrap_err();
        assert!(e.message.contains("dim 1 is 9"), "{e}");
        let f64s = ArrayInfo {
            key: "x",
            dims: &[1, 8],
            elem_type: 11,
        };
        assert!(fit(&fixed, "s", &[f64s], &mut casts).is_ok());
        assert_eq!(casts.keys().collect::<Vec<_>>(), ["x"]);
        let ints = ArrayInfo {
            key: "x",
            dims: &[1, 8],
            elem_type: 6,
        };
        let e = fit(&fixed, "s", &[ints], &mut casts).unwrap_err();
        assert!(e.hint.unwrap_or_default().contains("astype(np.float32)"));
    }
}
