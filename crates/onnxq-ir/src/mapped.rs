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

/// One mapped file, shared by every `Bytes` slice taken from it; a spill file ([`crate::Spill`])
/// keeps its temporary file here, removed once the last slice is gone (after the map: fields drop
/// in order).
#[derive(Debug)]
pub(crate) struct Mapped {
    map: Mmap,
    /// Held only to be dropped after `map`.
    _spill: Option<tempfile::NamedTempFile>,
}

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

/// Maps a finished spill file read-only; the map owns the temporary file from now on.
pub(crate) fn map_spill(tmp: tempfile::NamedTempFile) -> Result<(Arc<Mapped>, Bytes)> {
    // SAFETY: as in `map_file`: a private read-only map of a file only this process wrote, and
    // never writes again (the writer is gone; the map owns the file).
    let map = unsafe { Mmap::map(tmp.as_file()) }.map_err(|e| Error::io("map", tmp.path(), e))?;
    let mapped = Arc::new(Mapped {
        map,
        _spill: Some(tmp),
    });
    let bytes = Bytes::from_owner(ArcMapped(mapped.clone()));
    Ok((mapped, bytes))
}

/// Maps `path`, a `what` ("model file", ...), read-only. An empty file gives an empty buffer (mmap
/// cannot map zero bytes). Anything but a regular file is refused before it is opened: opening a
/// named pipe for reading blocks until a writer appears, and a device may never end.
pub(crate) fn map_file(
    path: &Path,
    what: &dyn Fn() -> String,
) -> Result<(Option<Arc<Mapped>>, Bytes)> {
    let not_a_file = |kind| Error::NotAFile {
        what: what(),
        path: path.to_owned(),
        kind,
    };
    let meta = std::fs::metadata(path).map_err(|e| Error::io("read", path, e))?;
    if let Some(kind) = not_regular(&meta) {
        return Err(not_a_file(kind));
    }
    let file = open_nonblocking(path).map_err(|e| Error::io("open", path, e))?;
    let meta = file.metadata().map_err(|e| Error::io("read", path, e))?;
    // The path may have been swapped for a pipe between the check and the open; the open did not
    // block (O_NONBLOCK), and this check on the open file sees what was really opened.
    if let Some(kind) = not_regular(&meta) {
        return Err(not_a_file(kind));
    }
    let len = meta.len();
    if len == 0 {
        return Ok((None, Bytes::new()));
    }
    // SAFETY: the map is read-only and private. onnxq never writes to a file it has mapped (outputs
    // go to a fresh temporary file renamed into place, which leaves the mapped inode untouched).
    // Another process truncating the file while we run is outside what any reader can defend against.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io("map", path, e))?;
    let mapped = Arc::new(Mapped { map, _spill: None });
    let bytes = Bytes::from_owner(ArcMapped(mapped.clone()));
    Ok((Some(mapped), bytes))
}

/// What `meta` is if it is not a regular file, in words for an error message.
pub(crate) fn not_regular(meta: &std::fs::Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        return None;
    }
    if t.is_dir() {
        return Some("a folder");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return Some("a named pipe (FIFO)");
        }
        if t.is_socket() {
            return Some("a socket");
        }
        if t.is_block_device() || t.is_char_device() {
            return Some("a device");
        }
    }
    Some("a special file")
}

/// Opens `path` for reading without blocking: on a named pipe a plain open waits for a writer.
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    options.open(path)
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

    /// Adds the maps of `other` (a [`crate::Spill`]'s), so saving releases their pages too.
    pub fn extend(&mut self, other: Sources) {
        self.maps.extend(other.maps);
    }

    /// Drops every mapped page from memory (they are read back from the files when needed).
    pub fn release_all(&self) {
        for map in &self.maps {
            // SAFETY: as in `release`: private read-only maps, every slice stays valid.
            let _ = unsafe {
                map.map
                    .unchecked_advise_range(UncheckedAdvice::DontNeed, 0, map.map.len())
            };
        }
    }

    /// Drops the pages of `data` from memory if it lies in one of the maps. The data stays valid:
    /// a later read faults it back in from the file.
    pub fn release(&self, data: &[u8]) {
        let start = data.as_ptr() as usize;
        for map in &self.maps {
            let base = map.map.as_ptr() as usize;
            if start < base || start + data.len() > base + map.map.len() {
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
                    map.map
                        .unchecked_advise_range(UncheckedAdvice::DontNeed, offset, end - offset)
                };
            }
            return;
        }
    }
}
