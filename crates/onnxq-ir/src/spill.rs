//! A spill file: tensor bytes a pass produces (quantized weights) written to a temporary file as
//! soon as each is ready, then memory-mapped, so a pass over a model larger than memory holds a
//! few tensors in anonymous memory, not all it made. Saving streams the mapped bytes to the output
//! and releases their pages like the input's.
//!
//! The file is a temporary named with [`crate::temp_prefix`] in a folder the caller picks (the
//! output's, so it is on the output's file system and the signal handler that removes this run's
//! temporaries finds it); it disappears once the last tensor slice of it is dropped.

use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::mapped::{Sources, map_spill};
use crate::save::temp_file_in;

/// Spilled slices start on this boundary (the alignment save gives small external tensors).
const ALIGN: u64 = 64;

/// Where a spilled tensor's bytes are, until [`Spill::finish`] maps the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spilled(Range<u64>);

/// An append-only spill file, shared by parallel writers.
#[derive(Debug)]
pub struct Spill {
    dir: PathBuf,
    file: Mutex<Option<(tempfile::NamedTempFile, u64)>>,
}

impl Spill {
    /// A spill in `dir`; the file is created on the first [`Spill::put`].
    pub fn new(dir: &Path) -> Spill {
        Spill {
            dir: dir.to_owned(),
            file: Mutex::new(None),
        }
    }

    /// Appends `data` and says where it went.
    pub fn put(&self, data: &[u8]) -> Result<Spilled> {
        let mut guard = self
            .file
            .lock()
            .map_err(|_| Error::Invariant("a spill writer panicked".into()))?;
        if guard.is_none() {
            let tmp = temp_file_in(&self.dir).map_err(|e| Error::io("write", &self.dir, e))?;
            *guard = Some((tmp, 0));
        }
        let (tmp, len) = guard
            .as_mut()
            .ok_or_else(|| Error::Invariant("spill file missing".into()))?;
        let start = len.next_multiple_of(ALIGN);
        let pad = [0u8; ALIGN as usize];
        let path = tmp.path().to_owned();
        let f = tmp.as_file_mut();
        f.write_all(&pad[..(start - *len) as usize])
            .and_then(|()| f.write_all(data))
            .map_err(|e| Error::io("write", &path, e))?;
        *len = start + data.len() as u64;
        Ok(Spilled(start..*len))
    }

    /// Maps what was written: the bytes of every [`Spilled`] slice, and the map as [`Sources`] for
    /// the model (see [`crate::Model::add_sources`]) so saving releases its pages. `None` if nothing
    /// was spilled.
    pub fn finish(self) -> Result<Option<(SpillMap, Sources)>> {
        let file = self
            .file
            .into_inner()
            .map_err(|_| Error::Invariant("a spill writer panicked".into()))?;
        let Some((tmp, _)) = file else {
            return Ok(None);
        };
        let (map, bytes) = map_spill(tmp)?;
        let mut sources = Sources::default();
        sources.push(map);
        Ok(Some((SpillMap(bytes), sources)))
    }
}

/// A finished, mapped spill file.
#[derive(Debug, Clone)]
pub struct SpillMap(Bytes);

impl SpillMap {
    /// The bytes of a spilled slice (zero-copy).
    pub fn get(&self, s: &Spilled) -> Result<Bytes> {
        let (a, b) = (s.0.start as usize, s.0.end as usize);
        if b > self.0.len() {
            return Err(Error::Invariant(format!(
                "spilled slice {a}..{b} past the spill file's {} bytes",
                self.0.len()
            )));
        }
        Ok(self.0.slice(a..b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_read_back_aligned_and_the_file_goes_with_the_last_slice() {
        let dir = tempfile::tempdir().unwrap();
        let spill = Spill::new(dir.path());
        let a = spill.put(b"abc").unwrap();
        let b = spill.put(&[7u8; 100]).unwrap();
        assert_eq!(b.0.start, 64);
        let (map, _sources) = spill.finish().unwrap().unwrap();
        assert_eq!(&map.get(&a).unwrap()[..], b"abc");
        let bytes = map.get(&b).unwrap();
        assert_eq!(&bytes[..], &[7u8; 100][..]);
        drop(map);
        drop(_sources);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        drop(bytes);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn nothing_spilled_makes_no_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Spill::new(dir.path()).finish().unwrap().is_none());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
