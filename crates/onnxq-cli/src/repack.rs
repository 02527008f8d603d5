//! `onnxq repack`: rewrite a model with tensors moved to external data or back inline.

use anyhow::Result;
use onnxq_ir::load;

use crate::args::RepackArgs;
use crate::outputs::{Outputs, Plan};
use crate::util::{human_bytes, note};

pub(crate) fn run(a: &RepackArgs) -> Result<()> {
    let model = load(&a.model)?;
    crate::shapes::warn_invalid(&model)?;
    let l = &a.layout;
    let layout = l.resolve(&a.output, &model, None, l.size_threshold);
    let mut plan = Plan::default();
    plan.read_model(&a.model, &model);
    plan.write_model(&a.output, &layout, "--external-data");
    plan.check()?;
    let mut outputs = Outputs::default();
    let saved = outputs.model(&model, &a.output, &layout)?;
    outputs.commit()?;
    let mut msg = format!(
        "wrote {} ({})",
        a.output.display(),
        human_bytes(saved.model_bytes)
    );
    if let Some(loc) = &saved.data_location {
        msg += &format!(
            " + {loc} ({}, {} tensors{})",
            human_bytes(saved.data_bytes),
            saved.external_tensors,
            if saved.forced_by_size {
                ", moved out to stay under protobuf's 2 GB limit"
            } else {
                ""
            }
        );
    }
    note(&msg);
    Ok(())
}
