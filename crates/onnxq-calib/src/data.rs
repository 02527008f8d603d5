//! Calibration samples: where they come from, streamed one at a time, and checked against the
//! model's inputs.
//!
//! Accepted sources, each yielding samples (one value per model input):
//! - a `.npz` whose keys are input names and whose first axis indexes samples (read one sample at a
//!   time, one stream per array, so memory does not grow with the number of samples): `[N, 1, 3,
//!   224, 224]` for an input `[1, 3, 224, 224]`, or `[N, 3, 224, 224]` when the input's first
//!   dimension is 1 or symbolic (each sample then has batch 1);
//! - a folder of `.npz` files, one sample each (keys = input names, no sample axis);
//! - a `.npy` file whose first axis indexes samples, for a single-input model;
//! - a folder of `.npy` files, one sample each, for single-input models;
//! - ONNX test-data folders (`input_0.pb`, `input_1.pb`, ... TensorProtos), one sample each, or a
//!   folder of them (`test_data_set_*`).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use onnxq_engine::{Data, Tensor};

use crate::fit::{ArrayInfo, Casts, fit, sample_dims};
pub use crate::fit::{DataError, Dim, InputSpec};
use crate::npy::{Header, read_data, read_header, read_npy};
use crate::testdata::{is_pb_input, load_pb_sample, sorted_entries};

/// One sample: a value per model input, by name.
pub type Sample = Vec<(String, Tensor)>;

/// One array of a stacked source: its name in the file (empty for a lone `.npy`) and the dims
/// of each sample it holds.
#[derive(Debug, Clone)]
struct StackedArray {
    key: String,
    sample_dims: Vec<usize>,
}

/// One place samples come from.
#[derive(Debug, Clone)]
enum Source {
    /// A `.npz` archive (or, with `npz` false, a lone `.npy` array) whose arrays' first axis
    /// indexes `count` samples.
    Stacked {
        path: PathBuf,
        npz: bool,
        arrays: Vec<StackedArray>,
        count: usize,
    },
    /// An archive holding one sample.
    NpzSample(PathBuf),
    /// A lone array in a folder: one sample of a single-input model.
    Npy(PathBuf),
    /// An ONNX test-data folder.
    TestData(PathBuf),
}

/// The calibration samples of a run, read lazily and checked against the model's inputs.
#[derive(Debug, Clone)]
pub struct Samples {
    sources: Vec<Source>,
    inputs: Vec<InputSpec>,
    /// One past the last sample read (`truncate` lowers it).
    count: usize,
    /// The first sample handed out (`skip` raises it); earlier ones are read and dropped.
    start: usize,
    notes: Vec<String>,
}

/// How a lone array is named: after the model's only input.
fn lone_key(inputs: &[InputSpec]) -> &str {
    match inputs {
        [only] => &only.name,
        _ => "",
    }
}

impl Samples {
    /// Finds the samples in `paths` for a model with `inputs`, counting them and checking every
    /// sample's names, types and shapes against the inputs from the arrays' headers (test-data
    /// tensors are decoded), before any engine runs.
    pub fn open(paths: &[PathBuf], inputs: &[InputSpec]) -> Result<Samples, DataError> {
        let mut sources = Vec::new();
        for p in paths {
            if p.is_dir() {
                scan_dir(p, &mut sources)?;
            } else if has_ext(p, "npz") || has_ext(p, "npy") {
                sources.push(stacked(p, inputs)?);
            } else if p.exists() {
                return Err(DataError {
                    message: format!(
                        "calibration data `{}` is neither a .npz / .npy file nor a folder",
                        p.display()
                    ),
                    hint: Some(
                        "give a .npz (one array per input, first axis = samples), a .npy for a \
                         single-input model, or a folder of one-sample .npz / .npy files or ONNX \
                         test-data folders"
                            .into(),
                    ),
                });
            } else {
                return Err(format!("calibration data `{}` does not exist", p.display()).into());
            }
        }
        let count = sources
            .iter()
            .map(|s| {
                if let Source::Stacked { count, .. } = s {
                    *count
                } else {
                    1
                }
            })
            .sum();
        if count == 0 {
            return Err("the calibration data holds no samples".to_owned().into());
        }
        let mut casts = Casts::new();
        let mut index = 0;
        for source in &sources {
            check_source(source, inputs, &mut index, &mut casts)?;
        }
        let notes = casts
            .iter()
            .map(|(input, at)| {
                format!(
                    "calibration data for model input `{input}` is float64 (first in {}): \
                     cast to float32, the input's type",
                    at.trim_start_matches("calibration data ")
                )
            })
            .collect();
        Ok(Samples {
            sources,
            inputs: inputs.to_vec(),
            count,
            start: 0,
            notes,
        })
    }

    /// Notes on the data worth printing (float64 arrays cast to float32).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Keeps only the first `n` samples (all when there are fewer): `each` stops after them.
    pub fn truncate(&mut self, n: usize) {
        self.count = self.count.min(self.start + n);
    }

    /// Drops the first `n` samples (a held-out tail of the same data): `each` numbers the rest
    /// from 0. The dropped ones are still read, one at a time, and not checked twice.
    pub fn skip(&mut self, n: usize) {
        self.start = (self.start + n).min(self.count);
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.count - self.start
    }

    /// Whether there are none (never true for an opened set).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first sample, checked.
    pub fn first(&self) -> Result<Sample, String> {
        /// `each` has no early exit: this marker error stops it after the first sample.
        enum Stop {
            First,
            Failed(String),
        }
        impl From<String> for Stop {
            fn from(e: String) -> Stop {
                Stop::Failed(e)
            }
        }
        let mut first = None;
        match self.each(|_, s| {
            first = Some(s);
            Err(Stop::First)
        }) {
            Err(Stop::Failed(e)) => Err(e),
            _ => first.ok_or_else(|| "the calibration data has no samples".to_owned()),
        }
    }

    /// Calls `f` on every sample in order, checked and with its values in input order. Only one
    /// sample is in memory at a time.
    pub fn each<E: From<String>>(
        &self,
        mut f: impl FnMut(usize, Sample) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = self.start;
        let mut f = |i: usize, s: Sample| if i < start { Ok(()) } else { f(i - start, s) };
        let mut index = 0;
        for source in &self.sources {
            if index >= self.count {
                break;
            }
            match source {
                Source::Stacked {
                    path,
                    npz: true,
                    arrays,
                    count,
                } => {
                    let mut archives: Vec<zip::ZipArchive<File>> = arrays
                        .iter()
                        .map(|_| open_zip(path))
                        .collect::<Result<_, String>>()?;
                    let mut streams = Vec::with_capacity(arrays.len());
                    for (archive, a) in archives.iter_mut().zip(arrays) {
                        let what = format!("`{}`, array `{}`", path.display(), a.key);
                        let mut r = archive
                            .by_name(&format!("{}.npy", a.key))
                            .map_err(|e| format!("{what}: {e}"))?;
                        let h = read_header(&mut r, &what)?;
                        streams.push((a, r, h));
                    }
                    self.stacked_samples(path, &mut streams, *count, &mut index, &mut f)?;
                }
                Source::Stacked {
                    path,
                    arrays,
                    count,
                    ..
                } => {
                    let what = format!("`{}`", path.display());
                    let file = File::open(path)
                        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
                    let mut r = std::io::BufReader::new(file);
                    let h = read_header(&mut r, &what)?;
                    let mut streams = vec![(&arrays[0], r, h)];
                    self.stacked_samples(path, &mut streams, *count, &mut index, &mut f)?;
                }
                Source::NpzSample(path) => {
                    let at = format!("`{}`", path.display());
                    f(index, self.check(&at, read_npz_sample(path)?)?)?;
                    index += 1;
                }
                Source::Npy(path) => {
                    let at = format!("`{}`", path.display());
                    let mut file = File::open(path)
                        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
                    let t = read_npy(&mut std::io::BufReader::new(&mut file), &at)?;
                    let key = lone_key(&self.inputs).to_owned();
                    f(index, self.check(&at, vec![(key, t)])?)?;
                    index += 1;
                }
                Source::TestData(dir) => {
                    let at = format!("`{}`", dir.display());
                    f(index, self.check(&at, load_pb_sample(dir)?)?)?;
                    index += 1;
                }
            }
        }
        Ok(())
    }

    /// Reads `count` samples from the streams of a stacked source, one at a time.
    fn stacked_samples<R: Read, E: From<String>>(
        &self,
        path: &Path,
        streams: &mut [(&StackedArray, R, Header)],
        count: usize,
        index: &mut usize,
        f: &mut impl FnMut(usize, Sample) -> Result<(), E>,
    ) -> Result<(), E> {
        for j in 0..count {
            if *index >= self.count {
                break;
            }
            let at = format!("`{}`, sample {j}", path.display());
            let sample = streams
                .iter_mut()
                .map(|(a, r, h)| {
                    let what = format!("{at}, array `{}`", a.key);
                    let key = if a.key.is_empty() {
                        lone_key(&self.inputs).to_owned()
                    } else {
                        a.key.clone()
                    };
                    Ok((key, read_data(r, h, &a.sample_dims, &what)?))
                })
                .collect::<Result<Sample, String>>()?;
            f(*index, self.check(&at, sample)?)?;
            *index += 1;
        }
        Ok(())
    }

    /// Checks one sample (`at` names it) against the model's inputs (names, element types,
    /// shapes, finite floats), casts float64 data for a float32 input, and puts its values in
    /// input order.
    fn check(&self, at: &str, mut sample: Sample) -> Result<Sample, String> {
        let infos: Vec<ArrayInfo<'_>> = sample
            .iter()
            .map(|(k, t)| ArrayInfo {
                key: k,
                dims: &t.dims,
                elem_type: type_code(&t.data),
            })
            .collect();
        // Opening checked every sample's header already; this guards what was read.
        fit(&self.inputs, at, &infos, &mut Casts::new()).map_err(|e| e.message)?;
        self.inputs
            .iter()
            .map(|spec| {
                let pos = sample
                    .iter()
                    .position(|(k, _)| *k == spec.name)
                    .ok_or_else(|| format!("{at} has no value for model input `{}`", spec.name))?;
                let (name, mut t) = sample.swap_remove(pos);
                if spec.elem_type == 1
                    && let Data::F64(v) = &t.data
                {
                    t.data = Data::F32(v.iter().map(|&x| x as f32).collect());
                }
                let non_finite = match &t.data {
                    Data::F32(v) => v.iter().find(|x| !x.is_finite()).map(ToString::to_string),
                    Data::F64(v) => v.iter().find(|x| !x.is_finite()).map(ToString::to_string),
                    _ => None,
                };
                if let Some(bad) = non_finite {
                    return Err(format!(
                        "calibration data {at}, array `{name}` contains {bad}; calibration data must be finite"
                    ));
                }
                Ok((name, t))
            })
            .collect()
    }
}

/// A `.npz` or `.npy` file whose first axis indexes samples: its arrays, how each splits into
/// samples for its input, and the sample count they agree on.
fn stacked(path: &Path, inputs: &[InputSpec]) -> Result<Source, DataError> {
    let npz = has_ext(path, "npz");
    let headers: Vec<(String, Header)> = if npz {
        let mut zip = open_zip(path)?;
        let mut headers = Vec::new();
        for i in 0..zip.len() {
            let mut entry = zip
                .by_index(i)
                .map_err(|e| format!("`{}`: {e}", path.display()))?;
            let key = array_key(entry.name());
            let what = format!("`{}`, array `{key}`", path.display());
            headers.push((key, read_header(&mut entry, &what)?));
        }
        headers
    } else {
        if inputs.len() > 1 {
            return Err(DataError {
                message: format!(
                    "calibration data `{}` is one array, and the model has {} inputs",
                    path.display(),
                    inputs.len()
                ),
                hint: Some(format!(
                    "save one array per input in a .npz: np.savez(\"calib.npz\", {})",
                    inputs
                        .iter()
                        .map(|s| format!("{}=...", s.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            });
        }
        let mut file = std::io::BufReader::new(
            File::open(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?,
        );
        let what = format!("`{}`", path.display());
        vec![(String::new(), read_header(&mut file, &what)?)]
    };
    let mut arrays = Vec::new();
    let mut count: Option<(usize, String)> = None;
    for (key, h) in headers {
        let what = if npz {
            format!("calibration data `{}`, array `{key}`", path.display())
        } else {
            format!("calibration data `{}`", path.display())
        };
        let fed = if key.is_empty() {
            lone_key(inputs)
        } else {
            &key
        };
        let spec = inputs.iter().find(|s| s.name == fed);
        let sample = sample_dims(spec, &h.dims, &what)?;
        let n = h.dims[0];
        if let Some((m, first)) = &count
            && *m != n
        {
            return Err(format!(
                "`{}`: array `{key}` has {n} samples on its first axis, `{first}` has {m}",
                path.display()
            )
            .into());
        }
        count.get_or_insert((n, key.clone()));
        arrays.push(StackedArray {
            key,
            sample_dims: sample,
        });
    }
    Ok(Source::Stacked {
        path: path.to_path_buf(),
        npz,
        arrays,
        count: count.map_or(0, |c| c.0),
    })
}

/// Checks every sample of `source` against the model's inputs from headers alone (test-data
/// tensors are decoded: they have no separate header), counting samples in `index`.
fn check_source(
    source: &Source,
    inputs: &[InputSpec],
    index: &mut usize,
    casts: &mut Casts,
) -> Result<(), DataError> {
    let key_of = |k: &str| {
        if k.is_empty() {
            lone_key(inputs).to_owned()
        } else {
            k.to_owned()
        }
    };
    let (at, arrays): (String, Vec<(String, Vec<usize>, i32)>) = match source {
        Source::Stacked {
            path,
            npz,
            arrays,
            count,
        } => {
            // Every sample of a stacked file has the same shape: one check covers them all.
            let mut zip = if *npz { Some(open_zip(path)?) } else { None };
            let mut infos = Vec::new();
            for a in arrays {
                let h = match zip.as_mut() {
                    Some(z) => {
                        let what = format!("`{}`, array `{}`", path.display(), a.key);
                        let mut r = z
                            .by_name(&format!("{}.npy", a.key))
                            .map_err(|e| format!("{what}: {e}"))?;
                        read_header(&mut r, &what)?
                    }
                    None => read_header(
                        &mut File::open(path)
                            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?,
                        &format!("`{}`", path.display()),
                    )?,
                };
                infos.push((key_of(&a.key), a.sample_dims.clone(), h.elem_type()));
            }
            *index += count;
            (format!("`{}`, every sample", path.display()), infos)
        }
        Source::NpzSample(path) => {
            let mut zip = open_zip(path)?;
            let mut infos = Vec::new();
            for i in 0..zip.len() {
                let mut entry = zip
                    .by_index(i)
                    .map_err(|e| format!("`{}`: {e}", path.display()))?;
                let key = array_key(entry.name());
                let h = read_header(&mut entry, &format!("`{}`, array `{key}`", path.display()))?;
                let code = h.elem_type();
                infos.push((key, h.dims, code));
            }
            *index += 1;
            (
                format!("`{}` (sample {})", path.display(), *index - 1),
                infos,
            )
        }
        Source::Npy(path) => {
            let what = format!("`{}`", path.display());
            let mut file =
                File::open(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
            let h = read_header(&mut file, &what)?;
            *index += 1;
            (
                format!("{what} (sample {})", *index - 1),
                vec![(key_of(""), h.dims.clone(), h.elem_type())],
            )
        }
        Source::TestData(dir) => {
            let infos = load_pb_sample(dir)?
                .into_iter()
                .map(|(k, t)| {
                    let code = type_code(&t.data);
                    (k, t.dims, code)
                })
                .collect();
            *index += 1;
            (
                format!("`{}` (sample {})", dir.display(), *index - 1),
                infos,
            )
        }
    };
    let infos: Vec<ArrayInfo<'_>> = arrays
        .iter()
        .map(|(key, dims, elem_type)| ArrayInfo {
            key,
            dims,
            elem_type: *elem_type,
        })
        .collect();
    fit(inputs, &at, &infos, casts)
}

fn has_ext(p: &Path, ext: &str) -> bool {
    p.extension().and_then(|e| e.to_str()) == Some(ext)
}

fn open_zip(path: &Path) -> Result<zip::ZipArchive<File>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open `{}`: {e}", path.display()))?;
    zip::ZipArchive::new(file)
        .map_err(|e| format!("`{}` is not a .npz archive: {e}", path.display()))
}

/// The array name of an npz entry (`input_ids.npy` → `input_ids`).
fn array_key(entry: &str) -> String {
    entry.strip_suffix(".npy").unwrap_or(entry).to_owned()
}

fn read_npz_sample(path: &Path) -> Result<Sample, String> {
    let mut zip = open_zip(path)?;
    (0..zip.len())
        .map(|i| {
            let mut entry = zip
                .by_index(i)
                .map_err(|e| format!("`{}`: {e}", path.display()))?;
            let key = array_key(entry.name());
            let t = read_npy(&mut entry, &format!("{}: {key}", path.display()))?;
            Ok((key, t))
        })
        .collect()
}

fn scan_dir(dir: &Path, sources: &mut Vec<Source>) -> Result<(), String> {
    let entries = sorted_entries(dir)?;
    if entries.iter().any(|p| is_pb_input(p)) {
        sources.push(Source::TestData(dir.to_path_buf()));
        return Ok(());
    }
    for p in entries {
        if p.is_dir() {
            scan_dir(&p, sources)?;
        } else if has_ext(&p, "npz") {
            sources.push(Source::NpzSample(p));
        } else if has_ext(&p, "npy") {
            sources.push(Source::Npy(p));
        }
    }
    Ok(())
}

fn type_code(d: &Data) -> i32 {
    match d {
        Data::F32(_) => 1,
        Data::U8(_) => 2,
        Data::I8(_) => 3,
        Data::I32(_) => 6,
        Data::I64(_) => 7,
        Data::Bool(_) => 9,
        Data::F16(_) => 10,
        Data::F64(_) => 11,
    }
}
