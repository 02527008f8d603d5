//! Saving: choose which tensors go to an external data file, then stream both files to temporary
//! files in the target folder and rename them into place, so a failed save leaves nothing behind.
//!
//! Large tensor bytes are written straight from the input's memory maps in chunks and their pages
//! released afterwards, so peak memory stays near one chunk whatever the model's size.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use onnxq_proto as pb;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};

use crate::error::{Error, Result};
use crate::mapped::Sources;
use crate::model::Model;
use crate::paths::{check_location, parent_dir};
use crate::tensor::{data_len, raw_bytes, visit_tensors};

/// Protobuf cannot parse messages of 2 GiB or more; stay well below so readers have headroom.
pub const PROTO_LIMIT: u64 = (2 << 30) - (64 << 20);

/// Default size from which tensors move to external data (the `onnx` package's default), and the
/// smallest allowed: ONNX Runtime's shape inference cannot read shape-like constants (Reshape's
/// shape, Slice's starts, Unsqueeze's axes, ...) from external data and refuses to load such a model.
/// Those are all far below 1 KiB.
pub const DEFAULT_THRESHOLD: u64 = 1024;

/// Tensors of at least this size start on a 64 KiB boundary in the data file, so ONNX Runtime can
/// memory-map them (its own rule); smaller ones on 64 bytes.
const ALIGN_THRESHOLD: u64 = 1 << 20;

/// Where tensor data goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Every tensor inline, except that a model that would pass [`PROTO_LIMIT`] moves its largest
    /// tensors to `<model file name>.data`.
    Inline,
    /// Tensors of at least `threshold` bytes (strings excepted) go to `location`, a file name
    /// relative to the model's folder; the rest stay inline (and the 2 GB rule still applies).
    External {
        /// File name relative to the output model's folder.
        location: String,
        /// Minimum tensor size in bytes to move out.
        threshold: u64,
    },
}

/// What a save wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Saved {
    /// Size of the `.onnx` file.
    pub model_bytes: u64,
    /// The external data file, if any was written, relative to the model's folder.
    pub data_location: Option<String>,
    /// Tensors written to it.
    pub external_tensors: u64,
    /// Size of the data file.
    pub data_bytes: u64,
    /// Whether tensors moved out only because the model would pass the protobuf size limit.
    pub forced_by_size: bool,
}

/// Writes `model` to `path` with the given layout, atomically (temporary files then rename).
pub fn save(model: &Model, path: &Path, layout: &Layout) -> Result<Saved> {
    save_staged(model, path, layout)?.commit()
}

/// Writes `model` like [`save`] but leaves the files as temporaries beside their targets, so a
/// caller writing several files can rename them all only once every one is written.
pub fn save_staged(model: &Model, path: &Path, layout: &Layout) -> Result<Staged> {
    let mut proto = model.to_proto()?;
    let target = Target::new(path, layout)?;
    let (external, forced_by_size) = choose_external(&mut proto, target.threshold, path)?;
    let chunks = place_external(&mut proto, &external, &target.location)?;
    write_files(model, proto, path, &target, &chunks, forced_by_size)
}

/// A written, not yet renamed, save: the temporaries (removed if this is dropped) and their final
/// paths, the data file first so the model never points at a missing file.
#[derive(Debug)]
pub struct Staged {
    /// What the save wrote.
    pub saved: Saved,
    /// Each temporary file and the path it is renamed to.
    pub files: Vec<(tempfile::NamedTempFile, PathBuf)>,
}

impl Staged {
    /// Renames the files into place.
    pub fn commit(self) -> Result<Saved> {
        for (tmp, path) in self.files {
            tmp.persist(&path)
                .map_err(|e| Error::io("write", &path, e.error))?;
        }
        Ok(self.saved)
    }
}

/// The name prefix of every temporary file onnxq writes: the process id is part of it, so a signal
/// handler can remove this run's temporaries and no other run's.
pub fn temp_prefix() -> String {
    format!(".onnxq-{}-", std::process::id())
}

/// A temporary file in `dir` named with [`temp_prefix`], with the mode a file the user creates
/// gets (temporary files are private, 0600, by default).
pub fn temp_file_in(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    let prefix = temp_prefix();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    builder.tempfile_in(dir)
}

/// Where a save writes: the output's folder, the data file's location (relative to it) and the
/// size from which tensors move there.
struct Target<'a> {
    dir: &'a Path,
    location: String,
    threshold: u64,
}

impl<'a> Target<'a> {
    /// Checks the output path and the layout before anything is computed or written.
    fn new(path: &'a Path, layout: &Layout) -> Result<Target<'a>> {
        let dir = parent_dir(path);
        let file_name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            Error::io(
                "write",
                path,
                std::io::Error::other("the output path has no file name"),
            )
        })?;
        if let Layout::External { threshold, .. } = layout
            && *threshold < DEFAULT_THRESHOLD
        {
            return Err(Error::Option(format!(
                "a size threshold of {threshold} bytes is below the minimum of {DEFAULT_THRESHOLD}: ONNX Runtime \
                 cannot load models whose small shape constants are in external data"
            )));
        }
        let (location, threshold) = match layout {
            Layout::Inline => (format!("{file_name}.data"), u64::MAX),
            Layout::External {
                location,
                threshold,
            } => (location.clone(), *threshold),
        };
        check_location(&location).map_err(|reason| {
            Error::io("write", dir.join(&location), std::io::Error::other(reason))
        })?;
        if location == file_name {
            return Err(Error::io(
                "write",
                path,
                std::io::Error::other("the external data file cannot be the model file itself"),
            ));
        }
        Ok(Target {
            dir,
            location,
            threshold,
        })
    }
}

/// Pass 1: which tensors, in visit order, go to the data file (the movable ones of at least
/// `threshold` bytes, then more if the model would pass [`PROTO_LIMIT`]), and whether that limit
/// forced any.
fn choose_external(
    proto: &mut pb::ModelProto,
    threshold: u64,
    path: &Path,
) -> Result<(Vec<bool>, bool)> {
    // Strings and packed sub-byte typed data cannot move.
    let mut sizes: Vec<(u64, bool)> = Vec::new();
    visit_tensors(proto, &mut |t, place| {
        let movable = place.movable && raw_bytes(t).is_some();
        sizes.push((data_len(t), movable));
        Ok::<(), Error>(())
    })?;
    let mut external: Vec<bool> = sizes
        .iter()
        .map(|&(s, m)| m && s >= threshold && s > 0)
        .collect();
    let moved: u64 = sizes
        .iter()
        .zip(&external)
        .filter(|(_, e)| **e)
        .map(|(s, _)| s.0)
        .sum();
    // Each external reference costs well under 128 bytes of proto.
    let inline_estimate = (proto.encoded_len() as u64).saturating_sub(moved)
        + 128 * external.iter().filter(|e| **e).count() as u64;
    let forced_by_size = if inline_estimate > PROTO_LIMIT {
        fit_under_limit(&sizes, &mut external, inline_estimate, path)?
    } else {
        false
    };
    Ok((external, forced_by_size))
}

/// Moves the largest remaining movable tensors out until the model's estimated size is within
/// [`PROTO_LIMIT`]; returns whether it moved any, and fails if even all of them are not enough.
fn fit_under_limit(
    sizes: &[(u64, bool)],
    external: &mut [bool],
    mut inline_estimate: u64,
    path: &Path,
) -> Result<bool> {
    let mut forced_by_size = false;
    let mut candidates: Vec<usize> = (0..sizes.len())
        .filter(|&i| !external[i] && sizes[i].1 && sizes[i].0 > 0)
        .collect();
    candidates.sort_by_key(|&i| (std::cmp::Reverse(sizes[i].0), i));
    for i in candidates {
        if inline_estimate <= PROTO_LIMIT {
            break;
        }
        external[i] = true;
        forced_by_size = true;
        inline_estimate = inline_estimate.saturating_sub(sizes[i].0) + 128;
    }
    if inline_estimate > PROTO_LIMIT {
        return Err(Error::io(
            "write",
            path,
            std::io::Error::other(
                "the model stays over protobuf's 2 GB limit even with every movable tensor in external data",
            ),
        ));
    }
    Ok(forced_by_size)
}

/// Pass 2: gives each moved tensor its aligned place in the data file, rewriting it as an external
/// reference; returns the data to write, by offset, in file order.
fn place_external(
    proto: &mut pb::ModelProto,
    external: &[bool],
    location: &str,
) -> Result<Vec<(u64, Bytes)>> {
    let mut chunks: Vec<(u64, Bytes)> = Vec::new();
    let mut offset = 0u64;
    let mut index = 0usize;
    visit_tensors(proto, &mut |t, _| {
        let i = index;
        index += 1;
        if !external[i] {
            return Ok::<(), Error>(());
        }
        let data = raw_bytes(t).unwrap_or_else(|| unreachable!("only movable tensors are chosen"));
        let align = if data.len() as u64 >= ALIGN_THRESHOLD {
            1 << 16
        } else {
            64
        };
        offset = offset.next_multiple_of(align);
        let entry = |k: &str, v: String| pb::StringStringEntryProto {
            key: Some(k.into()),
            value: Some(v),
        };
        t.external_data = vec![
            entry("location", location.to_owned()),
            entry("offset", offset.to_string()),
            entry("length", data.len().to_string()),
        ];
        t.data_location = Some(pb::tensor_proto::DataLocation::External as i32);
        t.raw_data = None;
        t.float_data.clear();
        t.int32_data.clear();
        t.int64_data.clear();
        t.double_data.clear();
        t.uint64_data.clear();
        offset += data.len() as u64;
        chunks.push((offset - data.len() as u64, data));
        Ok(())
    })?;
    Ok(chunks)
}

/// Streams the data file (if any tensor moved) and the model into temporary files.
fn write_files(
    model: &Model,
    proto: pb::ModelProto,
    path: &Path,
    target: &Target<'_>,
    chunks: &[(u64, Bytes)],
    forced_by_size: bool,
) -> Result<Staged> {
    let mut saved = Saved {
        forced_by_size,
        ..Saved::default()
    };
    let mut files = Vec::new();
    if !chunks.is_empty() {
        let data_path = target.dir.join(&target.location);
        let (tmp, written) =
            write_atomic_tmp(&data_path, |w| write_data(w, chunks, &model.sources))?;
        saved.data_location = Some(target.location.clone());
        saved.external_tensors = chunks.len() as u64;
        saved.data_bytes = written;
        files.push((tmp, data_path));
    }
    let (model_tmp, written) = write_atomic_tmp(path, |w| write_model(w, proto, &model.sources))?;
    saved.model_bytes = written;
    files.push((model_tmp, path.to_owned()));
    Ok(Staged { saved, files })
}

/// Writes through `f` into a temporary file beside `path`; returns it unrenamed with its size.
fn write_atomic_tmp(
    path: &Path,
    f: impl FnOnce(&mut CountingWriter<BufWriter<&File>>) -> std::io::Result<()>,
) -> Result<(tempfile::NamedTempFile, u64)> {
    let dir = parent_dir(path);
    let tmp = temp_file_in(dir).map_err(|e| Error::io("create a temporary file in", dir, e))?;
    let mut w = CountingWriter {
        inner: BufWriter::with_capacity(1 << 20, tmp.as_file()),
        count: 0,
    };
    f(&mut w)
        .and_then(|()| w.flush())
        .map_err(|e| Error::io("write", path, e))?;
    let count = w.count;
    drop(w);
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io("write", path, e))?;
    Ok((tmp, count))
}

/// Counts bytes written, so offsets and sizes need no `seek`.
struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Bytes per write when streaming tensor data; pages are released after each.
const CHUNK: usize = 8 << 20;

fn write_bytes(w: &mut impl Write, data: &[u8], sources: &Sources) -> std::io::Result<()> {
    for chunk in data.chunks(CHUNK) {
        w.write_all(chunk)?;
        sources.release(chunk);
    }
    Ok(())
}

fn write_data(
    w: &mut CountingWriter<BufWriter<&File>>,
    chunks: &[(u64, Bytes)],
    sources: &Sources,
) -> std::io::Result<()> {
    static ZEROS: [u8; 1 << 16] = [0; 1 << 16];
    for (offset, data) in chunks {
        let pad = (offset - w.count) as usize;
        w.write_all(&ZEROS[..pad])?;
        write_bytes(w, data, sources)?;
    }
    Ok(())
}

fn write_len_delimited_head(w: &mut impl Write, tag: u32, len: usize) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(16);
    encode_key(tag, WireType::LengthDelimited, &mut head);
    encode_varint(len as u64, &mut head);
    w.write_all(&head)
}

/// Encodes the model exactly as `encode_to_vec` would (fields in tag order), but streams each
/// initializer's `raw_data` instead of building the whole message in memory.
fn write_model(
    w: &mut impl Write,
    mut m: pb::ModelProto,
    sources: &Sources,
) -> std::io::Result<()> {
    let graph = m.graph.take();
    // ModelProto: fields 1-6, then graph = 7, then 8 (opset_import), 14, 20, 25, 26.
    let tail = pb::ModelProto {
        opset_import: std::mem::take(&mut m.opset_import),
        metadata_props: std::mem::take(&mut m.metadata_props),
        training_info: std::mem::take(&mut m.training_info),
        functions: std::mem::take(&mut m.functions),
        configuration: std::mem::take(&mut m.configuration),
        ..Default::default()
    };
    w.write_all(&m.encode_to_vec())?;
    if let Some(mut g) = graph {
        write_len_delimited_head(w, 7, g.encoded_len())?;
        // GraphProto: node = 1, name = 2, initializer = 5, then 10-16.
        for n in &g.node {
            write_len_delimited_head(w, 1, n.encoded_len())?;
            w.write_all(&n.encode_to_vec())?;
        }
        let name = pb::GraphProto {
            name: g.name.take(),
            ..Default::default()
        };
        w.write_all(&name.encode_to_vec())?;
        for t in std::mem::take(&mut g.initializer) {
            write_tensor(w, 5, t, sources)?;
        }
        g.node.clear();
        w.write_all(&g.encode_to_vec())?;
    }
    w.write_all(&tail.encode_to_vec())
}

fn write_tensor(
    w: &mut impl Write,
    tag: u32,
    mut t: pb::TensorProto,
    sources: &Sources,
) -> std::io::Result<()> {
    write_len_delimited_head(w, tag, t.encoded_len())?;
    let Some(raw) = t.raw_data.take() else {
        return w.write_all(&t.encode_to_vec());
    };
    // TensorProto: fields 1-8, raw_data = 9, then 10-16.
    let tail = pb::TensorProto {
        double_data: std::mem::take(&mut t.double_data),
        uint64_data: std::mem::take(&mut t.uint64_data),
        doc_string: t.doc_string.take(),
        external_data: std::mem::take(&mut t.external_data),
        data_location: t.data_location.take(),
        metadata_props: std::mem::take(&mut t.metadata_props),
        ..Default::default()
    };
    w.write_all(&t.encode_to_vec())?;
    write_len_delimited_head(w, 9, raw.len())?;
    write_bytes(w, &raw, sources)?;
    w.write_all(&tail.encode_to_vec())
}
