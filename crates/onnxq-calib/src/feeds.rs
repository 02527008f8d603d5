//! The graph-input feeds of one sample handed to an activation statistic: the engine reports
//! node outputs, and graph inputs come from the feeds themselves. Shared by the statistics that
//! read float activations (per-channel stats, GPTQ's Hessians), so both accept the same types.

use onnxq_engine::{Data, DataRef, Tensor};

use crate::Error;

/// Calls `add(name, dims, values)` for each feed of `sample` that `wants` names; float16 feeds
/// are widened exactly, any other type is an error naming the input and `who` reads it.
pub(crate) fn each_float_feed(
    sample: &[(String, Tensor)],
    wants: impl Fn(&str) -> bool,
    who: &str,
    mut add: impl FnMut(&str, &[usize], DataRef<'_>) -> Result<(), Error>,
) -> Result<(), Error> {
    for (name, t) in sample {
        if !wants(name) {
            continue;
        }
        match &t.data {
            Data::F32(v) => add(name, &t.dims, DataRef::F32(v))?,
            Data::F16(v) => {
                let wide: Vec<f32> = v
                    .iter()
                    .map(|&b| half::f16::from_bits(b).to_f32())
                    .collect();
                add(name, &t.dims, DataRef::F32(&wide))?;
            }
            other => {
                return Err(Error::Data(format!(
                    "{who}: input `{name}` is {}, and {who} reads float activations",
                    other.type_name()
                )));
            }
        }
    }
    Ok(())
}
