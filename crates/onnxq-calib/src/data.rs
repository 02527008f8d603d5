//! Calibration samples: where they come from, streamed one at a time, and checked against the
//! model's inputs.
//!
//! Accepted sources, each yielding samples (one value per model input):
//! - a `.npz` whose keys are input names and whose first axis indexes samples (read one sample at a
//!   time, one stream per array, so memory does not grow with the number of samples);
//! - a folder of `.npz` files, one sample each (keys = input names, no sample axis);
//! - a folder of `.npy` files, one sample each, for single-input models;
//! - ONNX test-data folders (`input_0.pb`, `input_1.pb`, ... TensorProtos), one sample each, or a
//!   folder of them (`test_data_set_*`).

use std::fs::File;
use std::path::{Path, PathBuf};

use onnxq_engine::{Data, Tensor};
use onnxq_ir::proto as pb;
use prost::Message;

use crate::npy::{Header, read_data, read_header, read_npy};

/// One sample: a value per model input, by name.
pub type Sample = Vec<(String, Tensor)>;

/// The declared type of a model input, for checking samples.
#[derive(Debug, Clone)]
pub struct InputSpec {
    /// Input name.
    pub name: String,
    /// ONNX element type code (1 = float32, 7 = int64, ...), 0 if undeclared.
    pub elem_type: i32,
    /// Declared rank, if the shape is declared.
    pub rank: Option<usize>,
}

/// One place samples come from.
#[derive(Debug, Clone)]
enum Source {
    /// An archive whose arrays' first axis indexes `count` samples.
    Stacked {
        path: PathBuf,
        keys: Vec<String>,
        count: usize,
    },
    /// An archive holding one sample.
    NpzSample(PathBuf),
    /// A lone array: one sample of a single-input model.
    Npy(PathBuf),
    /// An ONNX test-data folder.
    TestData(PathBuf),
}

/// The calibration samples of a run, read lazily and checked against the model's inputs.
#[derive(Debug, Clone)]
pub struct Samples {
    sources: Vec<Source>,
    inputs: Vec<InputSpec>,
    count: usize,
}

impl Samples {
    /// Finds the samples in `paths` (counting them, reading only headers) for a model with `inputs`.
    pub fn open(paths: &[PathBuf], inputs: &[InputSpec]) -> Result<Samples, String> {
        let mut sources = Vec::new();
        for p in paths {
            if p.is_dir() {
                scan_dir(p, &mut sources)?;
            } else if has_ext(p, "npz") {
                let (keys, count) = stacked_layout(p)?;
                sources.push(Source::Stacked {
                    path: p.clone(),
                    keys,
                    count,
                });
            } else if p.exists() {
                return Err(format!(
                    "calibration data `{}` is neither a .npz file nor a folder",
                    p.display()
                ));
            } else {
                return Err(format!("calibration data `{}` does not exist", p.display()));
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
            return Err("the calibration data holds no samples".into());
        }
        Ok(Samples {
            sources,
            inputs: inputs.to_vec(),
            count,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none (never true for an opened set).
    pub fn is_empty(&self) -> bool {
        self.count == 0
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
        let mut index = 0;
        for source in &self.sources {
            match source {
                Source::Stacked { path, keys, count } => {
                    let what = |k: &str| format!("{}: {k}", path.display());
                    let mut archives: Vec<zip::ZipArchive<File>> = keys
                        .iter()
                        .map(|_| open_zip(path))
                        .collect::<Result<_, String>>()?;
                    let mut streams = Vec::with_capacity(keys.len());
                    for (archive, key) in archives.iter_mut().zip(keys) {
                        let mut r = archive
                            .by_name(&format!("{key}.npy"))
                            .map_err(|e| format!("{}: {e}", what(key)))?;
                        let h: Header = read_header(&mut r, &what(key))?;
                        streams.push((key, r, h));
                    }
                    for _ in 0..*count {
                        let sample = streams
                            .iter_mut()
                            .map(|(key, r, h)| {
                                Ok(((*key).clone(), read_data(r, h, &h.dims[1..], &what(key))?))
                            })
                            .collect::<Result<Sample, String>>()?;
                        f(index, self.check(index, sample)?)?;
                        index += 1;
                    }
                }
                Source::NpzSample(path) => {
                    f(index, self.check(index, read_npz_sample(path)?)?)?;
                    index += 1;
                }
                Source::Npy(path) => {
                    let mut file = File::open(path)
                        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
                    // A lone array: the model's only input.
                    let t = read_npy(
                        &mut std::io::BufReader::new(&mut file),
                        &path.display().to_string(),
                    )?;
                    f(index, self.check(index, vec![(String::new(), t)])?)?;
                    index += 1;
                }
                Source::TestData(dir) => {
                    f(index, self.check(index, load_pb_sample(dir)?)?)?;
                    index += 1;
                }
            }
        }
        Ok(())
    }

    /// Checks one sample against the model's inputs (names, element types, ranks, finite floats)
    /// and puts its values in input order; a lone unnamed array goes to a single-input model.
    fn check(&self, i: usize, mut sample: Sample) -> Result<Sample, String> {
        let inputs = &self.inputs;
        if inputs.len() == 1 && sample.len() == 1 && sample[0].0.is_empty() {
            sample[0].0 = inputs[0].name.clone();
        }
        inputs
            .iter()
            .map(|spec| {
                let pos = sample.iter().position(|(k, _)| *k == spec.name).ok_or_else(|| {
                    let keys: Vec<&str> = sample.iter().map(|(k, _)| k.as_str()).collect();
                    format!("sample {i} has no value for model input `{}` (it has {keys:?})", spec.name)
                })?;
                let (name, t) = sample.swap_remove(pos);
                if spec.elem_type != 0 && type_code(&t.data) != spec.elem_type {
                    return Err(format!(
                        "sample {i}, input `{name}`: data is {}, the model wants {}",
                        t.data.type_name(),
                        onnxq_ir::DataType(spec.elem_type)
                    ));
                }
                if let Some(rank) = spec.rank.filter(|&r| r != t.dims.len()) {
                    return Err(format!(
                        "sample {i}, input `{name}`: data has rank {} (dims {:?}), the model wants rank {rank}",
                        t.dims.len(),
                        t.dims
                    ));
                }
                let non_finite = match &t.data {
                    Data::F32(v) => v.iter().find(|x| !x.is_finite()).map(ToString::to_string),
                    Data::F64(v) => v.iter().find(|x| !x.is_finite()).map(ToString::to_string),
                    _ => None,
                };
                if let Some(bad) = non_finite {
                    return Err(format!("sample {i}, input `{name}` contains {bad}; calibration data must be finite"));
                }
                Ok((name, t))
            })
            .collect()
    }
}

fn has_ext(p: &Path, ext: &str) -> bool {
    p.extension().and_then(|e| e.to_str()) == Some(ext)
}

fn open_zip(path: &Path) -> Result<zip::ZipArchive<File>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open `{}`: {e}", path.display()))?;
    zip::ZipArchive::new(file)
        .map_err(|e| format!("`{}` is not a .npz archive: {e}", path.display()))
}

/// The keys of a stacked archive and its sample count, from the arrays' headers.
fn stacked_layout(path: &Path) -> Result<(Vec<String>, usize), String> {
    let mut zip = open_zip(path)?;
    let mut keys = Vec::new();
    let mut count: Option<(usize, String)> = None;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| format!("`{}`: {e}", path.display()))?;
        let key = array_key(entry.name());
        let h = read_header(&mut entry, &format!("{}: {key}", path.display()))?;
        let n = *h.dims.first().ok_or_else(|| {
            format!(
                "`{}`: array `{key}` is a scalar, with no sample axis",
                path.display()
            )
        })?;
        if let Some((m, first)) = &count
            && *m != n
        {
            return Err(format!(
                "`{}`: array `{key}` has {n} samples on its first axis, `{first}` has {m}",
                path.display()
            ));
        }
        count.get_or_insert((n, key.clone()));
        keys.push(key);
    }
    Ok((keys, count.map_or(0, |c| c.0)))
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

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    Ok(entries)
}

fn is_pb_input(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("input_") && n.ends_with(".pb"))
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

fn load_pb_sample(dir: &Path) -> Result<Sample, String> {
    let mut sample = Vec::new();
    for p in sorted_entries(dir)?.iter().filter(|p| is_pb_input(p)) {
        let bytes = std::fs::read(p).map_err(|e| format!("cannot read `{}`: {e}", p.display()))?;
        let t = pb::TensorProto::decode(bytes.as_slice())
            .map_err(|e| format!("`{}` is not a TensorProto: {e}", p.display()))?;
        sample.push((
            t.name().to_owned(),
            tensor_from_proto(&t).map_err(|e| format!("`{}`: {e}", p.display()))?,
        ));
    }
    if sample.is_empty() {
        return Err(format!("`{}` has no input_*.pb files", dir.display()));
    }
    Ok(sample)
}

fn tensor_from_proto(t: &pb::TensorProto) -> Result<Tensor, String> {
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension {d}")))
        .collect::<Result<_, _>>()?;
    let raw = onnxq_ir::tensor::raw_bytes(t).ok_or("string tensors cannot be fed")?;
    let data = match t.data_type() {
        1 => Data::F32(
            raw.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        7 => Data::I64(
            raw.chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap_or_default()))
                .collect(),
        ),
        6 => Data::I32(
            raw.chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        2 => Data::U8(raw.to_vec()),
        3 => Data::I8(raw.iter().map(|&b| b as i8).collect()),
        9 => Data::Bool(raw.iter().map(|&b| b != 0).collect()),
        other => {
            return Err(format!(
                "element type {} is not supported",
                onnxq_ir::DataType(other)
            ));
        }
    };
    Ok(Tensor { dims, data })
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
