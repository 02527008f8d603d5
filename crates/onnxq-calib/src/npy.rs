//! Reading NumPy `.npy` arrays and `.npz` archives (calibration data), without ndarray.
//!
//! Supported element types: float32/64, float16, int8/32/64, uint8, bool, little-endian, C order.
//! Anything else (Fortran order, big-endian, object arrays) is a clear error naming the file and key.

use std::io::Read;
use std::path::Path;

use onnxq_engine::{Data, Tensor};

/// A `.npy` payload parsed into a tensor; `what` names it in errors ("calib.npz: input_ids").
pub fn parse_npy(bytes: &[u8], what: &str) -> Result<Tensor, String> {
    let bad = |m: &str| format!("{what}: {m}");
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy array (bad magic)"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(&format!("unsupported .npy version {v}"))),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or_else(|| bad("truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
    let field = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}':"))? + key.len() + 3;
        Some(header[at..].trim_start())
    };
    let descr = field("descr")
        .and_then(|s| s.strip_prefix('\''))
        .and_then(|s| s.split('\'').next())
        .ok_or_else(|| bad("no descr"))?;
    if field("fortran_order").is_some_and(|s| s.starts_with("True")) {
        return Err(bad(
            "Fortran-order arrays are not supported; save with np.ascontiguousarray",
        ));
    }
    let shape_text = field("shape")
        .and_then(|s| s.strip_prefix('('))
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let dims: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| bad(&format!("bad shape `({shape_text})`")))
        })
        .collect::<Result<_, _>>()?;
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad("shape overflows"))?;
    let body = &bytes[start + header_len..];
    let take = |width: usize| -> Result<&[u8], String> {
        let len = n.checked_mul(width).ok_or_else(|| bad("shape overflows"))?;
        body.get(..len).ok_or_else(|| {
            bad(&format!(
                "holds {} bytes, shape {dims:?} needs {len}",
                body.len()
            ))
        })
    };
    let data = match descr {
        "<f4" => Data::F32(
            take(4)?
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        "<f8" => Data::F64(
            take(8)?
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default()))
                .collect(),
        ),
        "<f2" => Data::F16(
            take(2)?
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .collect(),
        ),
        "<i8" => Data::I64(
            take(8)?
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap_or_default()))
                .collect(),
        ),
        "<i4" => Data::I32(
            take(4)?
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        "|i1" => Data::I8(take(1)?.iter().map(|&b| b as i8).collect()),
        "|u1" => Data::U8(take(1)?.to_vec()),
        "|b1" => Data::Bool(take(1)?.iter().map(|&b| b != 0).collect()),
        other => {
            return Err(bad(&format!(
                "element type `{other}` is not supported (float32/64/16, int8/32/64, uint8, bool)"
            )));
        }
    };
    Ok(Tensor { dims, data })
}

/// Every array of a `.npz` archive, by key, in archive order.
pub fn read_npz(path: &Path) -> Result<Vec<(String, Tensor)>, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open `{}`: {e}", path.display()))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| format!("`{}` is not a .npz archive: {e}", path.display()))?;
    let mut out = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| format!("`{}`: {e}", path.display()))?;
        let key = entry
            .name()
            .strip_suffix(".npy")
            .unwrap_or(entry.name())
            .to_owned();
        let mut bytes = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| format!("`{}` entry `{key}`: {e}", path.display()))?;
        out.push((
            key.clone(),
            parse_npy(&bytes, &format!("{}: {key}", path.display()))?,
        ));
    }
    Ok(out)
}
