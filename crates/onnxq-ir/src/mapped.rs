//! Read-only memory maps of model and external-data files, and the only `unsafe` in onnxq.
//!
//! Tensor bytes are `bytes::Bytes` slices of these maps, so loading copies nothing. After save has
//! streamed a slice to its output it calls [`Sources::release`], which drops those pages from this
//! process (`MADV_DONTNEED`): writing a model larger than memory then never holds more than a chunk
//! of it resident.

#![allow(unsafe_code)]

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use memmap2::{Mmap, UncheckedAdvice};

use crate::error::{Error, Result};

/// One mapped file, shared by every `Bytes` slice taken from it.
#[derive(Debug)]
pub(crate) struct Mapped(Mmap);

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Maps `path` read-only. An empty file gives an empty buffer (mmap cannot map zero bytes).
pub(crate) fn map_file(path: &Path) -> Result<(Option<Arc<Mapped>>, Bytes)> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io("read", path, e))?
        .len();
    if len == 0 {
        return Ok((None, Bytes::new()));
    }
    // SAFETY: the map is read-only and private. onnxq never writes to a file it has mapped (outputs
    // go to a fresh temporary file renamed into place, which leaves the mapped inode untouched).
    // Another process truncating the file while we run is outside what any reader can defend against.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io("map", path, e))?;
    let mapped = Arc::new(Mapped(map));
    let bytes = Bytes::from_owner(ArcMapped(mapped.clone()));
    Ok((Some(mapped), bytes))
}

/// `Bytes::from_owner` needs an owner that is `AsRef<[u8]>`; this keeps the `Arc` shared.
struct ArcMapped(Arc<Mapped>);

impl AsRef<[u8]> for ArcMapped {
    fn as_ref(&self) -> &[u8] {
        self.0.as_ref().as_ref()
    }
}

/// The files a model's tensors point into.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    maps: Vec<Arc<Mapped>>,
}

impl Sources {
    pub(crate) fn push(&mut self, map: Arc<Mapped>) {
        self.maps.push(map);
    }

    /// Drops every mapped page from memory (they are read back from the files when needed).
    pub fn release_all(&self) {
        for map in &self.maps {
            // SAFETY: as in `release`: private read-only maps, every slice stays valid.
            let _ = unsafe {
                map.0
                    .unchecked_advise_range(UncheckedAdvice::DontNeed, 0, map.0.len())
            };
        }
    }

    /// Drops the pages of `data` from memory if it lies in one of the maps. The data stays valid:
    /// a later read faults it back in from the file.
    pub fn release(&self, data: &[u8]) {
        let start = data.as_ptr() as usize;
        for map in &self.maps {
            let base = map.0.as_ptr() as usize;
            if start < base || start + data.len() > base + map.0.len() {
                continue;
            }
            // Only whole pages inside the slice may go: a neighbouring tensor may share the edges.
            let page = 4096;
            let offset = (start - base).next_multiple_of(page);
            let end = (start - base + data.len()) / page * page;
            if end > offset {
                // SAFETY: the map is private and read-only, so MADV_DONTNEED discards no changes and
                // later reads see the file's bytes again; every `Bytes` slice stays valid.
                let _ = unsafe {
                    map.0
                        .unchecked_advise_range(UncheckedAdvice::DontNeed, offset, end - offset)
                };
            }
            return;
        }
    }
}
