//! What a quantized model says about how it was made: `producer_name = "onnxq"` with its version
//! and a `metadata_props` entry `onnxq.settings` with the settings used, as ONNX Runtime's tool
//! writes `producer_name = "onnx.quantize"`. A model found later can then be traced to the tool and
//! options that made it. Deterministic: no timestamps, no paths, only the options and the
//! calibration's method, engine and sample count.

use onnxq_ir::Model;
use onnxq_proto as pb;
use serde::Serialize;

/// The metadata key of the settings.
pub(crate) const SETTINGS_KEY: &str = "onnxq.settings";

/// Where static quantization's activation ranges came from, for the summary and the metadata.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Calibration {
    /// The calibration method and its options, as the ranges record them.
    pub(crate) method: String,
    /// The engine that ran the model.
    pub(crate) engine: String,
    /// Samples run.
    pub(crate) samples: usize,
    /// Read from a `--ranges` file (else calibrated in this run from `--data`). Summary only:
    /// the same ranges make the same model, byte for byte, whichever way they came.
    #[serde(skip)]
    pub(crate) from_file: bool,
}

impl Calibration {
    /// The header of `ranges`, read from a file or calibrated now.
    pub(crate) fn of(ranges: &onnxq_calib::Ranges, from_file: bool) -> Calibration {
        Calibration {
            method: ranges.method.clone(),
            engine: ranges.engine.clone(),
            samples: ranges.samples,
            from_file,
        }
    }

    /// The summary line: which engine calibrated, how, and whether in this run.
    pub(crate) fn line(&self) -> String {
        format!(
            "{} by {} ({}, {} sample{})",
            if self.from_file {
                "ranges from --ranges, calibrated"
            } else {
                "calibrated"
            },
            self.engine,
            self.method,
            self.samples,
            if self.samples == 1 { "" } else { "s" }
        )
    }
}

/// The settings recorded in the model.
#[derive(Serialize)]
struct Settings<'a, O: Serialize> {
    mode: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'a str>,
    options: &'a O,
    #[serde(skip_serializing_if = "Option::is_none")]
    calibration: Option<&'a Calibration>,
    #[serde(flatten)]
    recovery: &'a Recovery,
}

/// The accuracy-recovery steps as recorded (`compare`'s suggestions redo them).
#[derive(Default, Serialize)]
pub(crate) struct Recovery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) smooth_quant: Option<Smooth>,
    /// `--equalize`'s mode (`exact`, `relu6`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) equalize: Option<&'static str>,
    /// `--bias-correction` (absent when off, so models made without it keep their bytes).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) bias_correction: bool,
    /// `--weight-rounding gptq` (absent for rounding to nearest).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) gptq_rounding: bool,
}

impl Recovery {
    /// The record of what the rewrites and bias correction were asked to do.
    pub(crate) fn of(
        smooth: Option<&onnxq_quant::SmoothOptions>,
        equalize: Option<&onnxq_quant::EqualizeOptions>,
        bias_correction: bool,
        gptq_rounding: bool,
    ) -> Recovery {
        Recovery {
            smooth_quant: smooth.map(|s| Smooth {
                alpha: s.alpha,
                folding: s.folding,
            }),
            equalize: equalize.map(|e| if e.relu6 { "relu6" } else { "exact" }),
            bias_correction,
            gptq_rounding,
        }
    }
}

/// SmoothQuant's settings as recorded (`compare`'s suggestions smooth the float model again).
#[derive(Serialize, serde::Deserialize)]
pub(crate) struct Smooth {
    pub(crate) alpha: f32,
    pub(crate) folding: bool,
}

/// Sets the producer to onnxq and its version, and records `options` (with the mode, the static
/// format, the calibration and the recovery steps) under [`SETTINGS_KEY`], replacing an entry of that key the input
/// model had (it described the input's quantization, not this one).
pub(crate) fn stamp<O: Serialize>(
    model: &mut Model,
    mode: &str,
    format: Option<&str>,
    options: &O,
    calibration: Option<&Calibration>,
    recovery: &Recovery,
) -> anyhow::Result<()> {
    let settings = serde_json::to_string(&Settings {
        mode,
        format,
        options,
        calibration,
        recovery,
    })?;
    let p = &mut model.proto;
    p.producer_name = Some("onnxq".into());
    p.producer_version = Some(env!("CARGO_PKG_VERSION").into());
    p.metadata_props.retain(|e| e.key() != SETTINGS_KEY);
    p.metadata_props.push(pb::StringStringEntryProto {
        key: Some(SETTINGS_KEY.into()),
        value: Some(settings),
    });
    Ok(())
}
