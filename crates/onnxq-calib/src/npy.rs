//! Reading NumPy `.npy` arrays and `.npz` archives (calibration data), without ndarray, from any
//! reader, so an archive can be streamed one sample at a time.
//!
//! Supported element types: float32/64, float16, int8/32/64, uint8, bool, little-endian, C order.
//! Anything else (Fortran order, big-endian, object arrays) is a clear error naming the file and key.

use std::io::Read;

use onnxq_engine::{Data, Tensor};

/// The header of an `.npy` array.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// numpy's type string (`<f4`, `<i8`, ...).
    pub descr: String,
    /// Dimensions.
    pub dims: Vec<usize>,
}

impl Header {
    /// The ONNX element type code of the array's type (1 = float32, 11 = float64, ...).
    pub fn elem_type(&self) -> i32 {
        match self.descr.as_str() {
            "<f4" => 1,
            "|u1" => 2,
            "|i1" => 3,
            "<i4" => 6,
            "<i8" => 7,
            "|b1" => 9,
            "<f2" => 10,
            "<f8" => 11,
            _ => 0,
        }
    }

    /// Bytes per element.
    pub fn width(&self) -> Option<usize> {
        Some(match self.descr.as_str() {
            "<f4" | "<i4" => 4,
            "<f8" | "<i8" => 8,
            "<f2" => 2,
            "|i1" | "|u1" | "|b1" => 1,
            _ => return None,
        })
    }
}

/// Reads an `.npy` header from the start of `r`, leaving `r` at the data; `what` names the array
/// in errors ("calib.npz: input_ids").
pub fn read_header(r: &mut impl Read, what: &str) -> Result<Header, String> {
    let bad = |m: &str| format!("{what}: {m}");
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)
        .map_err(|_| bad("not a .npy array (too short)"))?;
    if &magic[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy array (bad magic)"));
    }
    let header_len = match magic[6] {
        1 => {
            let mut l = [0u8; 2];
            r.read_exact(&mut l).map_err(|_| bad("truncated header"))?;
            usize::from(u16::from_le_bytes(l))
        }
        2 | 3 => {
            let mut l = [0u8; 4];
            r.read_exact(&mut l).map_err(|_| bad("truncated header"))?;
            u32::from_le_bytes(l) as usize
        }
        v => return Err(bad(&format!("unsupported .npy version {v}"))),
    };
    let mut header = vec![0u8; header_len];
    r.read_exact(&mut header)
        .map_err(|_| bad("truncated header"))?;
    let header = String::from_utf8(header).map_err(|_| bad("header is not text"))?;
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
    let h = Header {
        descr: descr.to_owned(),
        dims,
    };
    if h.width().is_none() {
        return Err(bad(&format!(
            "element type `{descr}` is not supported (float32/64/16, int8/32/64, uint8, bool)"
        )));
    }
    Ok(h)
}

/// Reads `dims` worth of elements of `header`'s type from `r`.
pub fn read_data(
    r: &mut impl Read,
    header: &Header,
    dims: &[usize],
    what: &str,
) -> Result<Tensor, String> {
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("{what}: shape overflows"))?;
    let width = header.width().unwrap_or(1);
    let len = n
        .checked_mul(width)
        .ok_or_else(|| format!("{what}: shape overflows"))?;
    let mut bytes = vec![0u8; len];
    r.read_exact(&mut bytes).map_err(|_| {
        format!("{what}: the data ends before the {len} bytes shape {dims:?} needs")
    })?;
    let data = match header.descr.as_str() {
        "<f4" => Data::F32(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        "<f8" => Data::F64(
            bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default()))
                .collect(),
        ),
        "<f2" => Data::F16(
            bytes
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .collect(),
        ),
        "<i8" => Data::I64(
            bytes
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap_or_default()))
                .collect(),
        ),
        "<i4" => Data::I32(
            bytes
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        "|i1" => Data::I8(bytes.iter().map(|&b| b as i8).collect()),
        "|u1" => Data::U8(bytes),
        _ => Data::Bool(bytes.iter().map(|&b| b != 0).collect()),
    };
    Ok(Tensor {
        dims: dims.to_vec(),
        data,
    })
}

/// A whole `.npy` array from a reader.
pub fn read_npy(r: &mut impl Read, what: &str) -> Result<Tensor, String> {
    let h = read_header(r, what)?;
    read_data(r, &h, &h.dims.clone(), what)
}
