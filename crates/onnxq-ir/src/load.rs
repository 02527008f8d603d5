//! Loading: memory-map the file, decode without copying tensor bytes, resolve external data (safely),
//! check every tensor, and build the IR.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use onnxq_proto as pb;
use prost::Message;

use crate::error::{Error, Result};
use crate::graph::from_proto::graph_from_proto;
use crate::mapped::{Mapped, Sources, map_file};
use crate::model::{ExternalFile, Model};
use crate::paths::{parent_dir, safe_join};
use crate::tensor::{check_tensor, visit_tensors};

/// Loads the model at `path`, with its external data.
pub fn load(path: &Path) -> Result<Model> {
    let (map, bytes) = map_file(path, &|| "model file".to_owned())?;
    let mut sources = Sources::default();
    if let Some(map) = map {
        sources.push(map);
    }
    let mut model = from_bytes_in(bytes, path, Some(parent_dir(path)), sources)?;
    model.path = Some(path.to_owned());
    Ok(model)
}

/// Decodes a model held in memory. External data is refused: there is no folder to resolve it in.
pub fn from_bytes(bytes: Bytes) -> Result<Model> {
    from_bytes_in(bytes, Path::new("<memory>"), None, Sources::default())
}

fn from_bytes_in(
    bytes: Bytes,
    path: &Path,
    dir: Option<&Path>,
    mut sources: Sources,
) -> Result<Model> {
    if bytes.is_empty() {
        return Err(Error::Decode {
            path: path.to_owned(),
            reason: "the file is empty".into(),
        });
    }
    let mut proto = pb::ModelProto::decode(bytes).map_err(|e| Error::Decode {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let invalid = |reason: String| Error::Invalid {
        path: path.to_owned(),
        reason,
    };
    let Some(graph) = proto.graph.take() else {
        return Err(invalid("it has no graph (is this an ONNX model?)".into()));
    };
    if proto.ir_version.is_none() {
        return Err(invalid("`ir_version` is missing".into()));
    }
    let mut external = ExternalResolver {
        dir,
        model: path,
        files: BTreeMap::new(),
    };
    proto.graph = Some(graph);
    visit_tensors(&mut proto, &mut |t, place| {
        if t.data_location() == pb::tensor_proto::DataLocation::External {
            external.resolve(t, &place.what)?;
        }
        check_tensor(t).map_err(|reason| invalid(format!("{place} {reason}")))
    })?;
    let mut external_files = Vec::new();
    for (map, info) in external.files.into_values() {
        sources.push(map);
        external_files.push(info);
    }
    let graph = proto
        .graph
        .take()
        .unwrap_or_else(|| unreachable!("checked above"));
    let graph = graph_from_proto(graph, &Vec::new()).map_err(invalid)?;
    Ok(Model {
        proto,
        graph,
        sources,
        external_files,
        path: None,
    })
}

/// Resolves external-data references of one model, mapping each data file once.
struct ExternalResolver<'a> {
    dir: Option<&'a Path>,
    model: &'a Path,
    files: BTreeMap<String, (Arc<Mapped>, ExternalFile)>,
}

impl ExternalResolver<'_> {
    /// Replaces the tensor's external reference with a zero-copy slice of the mapped data file.
    fn resolve(&mut self, t: &mut pb::TensorProto, place: &str) -> Result<()> {
        let err = |reason: String| Error::ExternalData {
            model: self.model.to_owned(),
            tensor: place.to_owned(),
            reason,
        };
        let Some(dir) = self.dir else {
            return Err(err(
                "has external data, which a model read from memory cannot resolve".into(),
            ));
        };
        let mut location = None;
        let (mut offset, mut length) = (0u64, None);
        for kv in &t.external_data {
            let number = |v: &str| {
                v.parse::<u64>().map_err(|_| {
                    err(format!(
                        "external data `{}` is `{v}`, not a byte count",
                        kv.key()
                    ))
                })
            };
            match kv.key() {
                "location" => location = Some(kv.value().to_owned()),
                "offset" => offset = number(kv.value())?,
                "length" => length = Some(number(kv.value())?),
                _ => {} // "checksum" and future keys do not affect where the bytes are.
            }
        }
        let location =
            location.ok_or_else(|| err("is marked external but has no `location`".into()))?;
        if !self.files.contains_key(&location) {
            let path = safe_join(dir, &location).map_err(&err)?;
            let what = || format!("data file of {place} in `{}`", self.model.display());
            let (map, bytes) = map_file(&path, &what).map_err(|e| match e {
                // Its own hint says what to do; the external-data one would not.
                Error::NotAFile { .. } => e,
                e => err(format!("cannot use data file `{location}`: {e}")),
            })?;
            let map = map.ok_or_else(|| err(format!("data file `{location}` is empty")))?;
            let info = ExternalFile {
                location: location.clone(),
                size: bytes.len() as u64,
                tensors: 0,
                bytes: 0,
                data: bytes,
            };
            self.files.insert(location.clone(), (map, info));
        }
        let (_, file) = self
            .files
            .get_mut(&location)
            .unwrap_or_else(|| unreachable!("inserted above"));
        let length = length.unwrap_or_else(|| file.size.saturating_sub(offset));
        let end = offset.checked_add(length).filter(|&e| e <= file.size).ok_or_else(|| {
            err(format!("offset {offset} + length {length} runs past the end of `{location}` ({} bytes)", file.size))
        })?;
        t.raw_data = Some(file.data.slice(offset as usize..end as usize));
        t.external_data.clear();
        t.data_location = None;
        file.tensors += 1;
        file.bytes += length;
        Ok(())
    }
}
