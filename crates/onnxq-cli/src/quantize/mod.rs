//! `onnxq quantize`: resolve flags and config into options, quantize, save, report.

mod options;
mod ranges;
mod stamp;
mod summary;

use anyhow::{Context, Result};
use onnxq_ir::{Layout, load, save};
use onnxq_quant::{lower_qoperator, quantize_dynamic, quantize_qdq};

use crate::args::{Format, Mode, QuantizeArgs};
use crate::util::{check_output, human_bytes, note};

pub(crate) fn run(a: &QuantizeArgs) -> Result<()> {
    let options::Resolved {
        args,
        cfg,
        mode,
        mut notes,
    } = options::resolve(a)?;
    let a = &args;
    let mut model = load(&a.model)?;
    check_output(&a.model, &a.output)?;
    notes.extend(options::check_op_types(&model, mode, &a.op_types)?);
    let report = match mode {
        Mode::Dynamic => {
            let opts = options::dynamic_options(a, &cfg)?;
            let report = quantize_dynamic(&mut model, &opts)?;
            stamp::stamp(&mut model, "dynamic", None, &opts, None)?;
            report
        }
        Mode::Static => {
            let format = a.format.unwrap_or(Format::Qdq);
            let opts = options::static_options(a, &cfg)?;
            onnxq_quant::overrides::validate(&model.graph, &opts)?;
            let (ranges, unranged, calibration) = ranges::static_ranges(a, &cfg, &model, &opts)?;
            let mut report = quantize_qdq(&mut model, &ranges, &opts)?;
            report.notes.extend(unranged);
            if format == Format::Qoperator {
                lower_qoperator(&mut model, &mut report)?;
            }
            report.calibration = Some(calibration.line());
            let format = format!("{format:?}").to_lowercase();
            stamp::stamp(
                &mut model,
                "static",
                Some(&format),
                &opts,
                Some(&calibration),
            )?;
            report
        }
    };
    let layout = if model.external_files().is_empty() {
        Layout::Inline
    } else {
        let name = a
            .output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Layout::External {
            location: format!("{name}.data"),
            threshold: onnxq_ir::DEFAULT_THRESHOLD,
        }
    };
    let saved = save(&model, &a.output, &layout)
        .with_context(|| format!("cannot write `{}`", a.output.display()))?;
    if let Some(path) = &a.report {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("cannot write report `{}`", path.display()))?;
    }
    for n in &notes {
        note(n);
    }
    let warnings = summary::print(&report);
    let mut msg = format!(
        "wrote {} ({})",
        a.output.display(),
        human_bytes(saved.model_bytes)
    );
    if let Some(loc) = &saved.data_location {
        msg += &format!(" + {loc} ({})", human_bytes(saved.data_bytes));
    }
    note(&msg);
    summary::print_warnings(&warnings);
    Ok(())
}
