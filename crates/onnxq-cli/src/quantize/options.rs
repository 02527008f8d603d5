//! Option resolution for `onnxq quantize`: flags over the config file over defaults, the mode
//! (calibration inputs select static when no mode is given), and the one rule that no option is
//! silently ignored: an option the chosen mode does not use is an error naming it and the mode
//! that uses it, and so is an `--op-types` entry that the model lacks or the mode cannot quantize.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use onnxq_quant::numerics::QuantType;
use onnxq_quant::{DynamicOptions, StaticOptions};

use crate::args::{CalibMethod, Format, Mode, QType, QuantizeArgs};
use crate::config::keys::{OPTIONS, Uses, flag};
use crate::config::{self, Config};
use crate::util::{HintExt, did_you_mean, fail};

/// The settings of one run: the arguments with the config merged in (flags win), the config's
/// extra options, the mode, and notes for the summary.
pub(crate) struct Resolved {
    pub(crate) args: QuantizeArgs,
    pub(crate) cfg: Config,
    pub(crate) mode: Mode,
    pub(crate) notes: Vec<String>,
}

/// Merges flags and config, chooses the mode and refuses any option that mode does not use.
pub(crate) fn resolve(a: &QuantizeArgs) -> Result<Resolved> {
    let mut cfg = config::load(a.config.as_deref(), &a.extra)?;
    let method_settings = method_settings(a, &cfg);
    let args = merge(a, &mut cfg);
    let mut notes = Vec::new();
    let (mode, why) = match (a.mode, cfg.mode) {
        (Some(m), _) => (m, format!("--mode {}", name(m))),
        (None, Some(m)) => (m, format!("`mode = \"{}\"` in the config", name(m))),
        (None, None) if !args.calib.data.is_empty() || args.ranges.is_some() => {
            let on_command_line = a.given.has("data") || a.given.has("ranges");
            let by = match (args.ranges.is_some(), on_command_line) {
                (true, true) => "--ranges",
                (false, true) => "--data",
                (true, false) => "the config's `ranges`",
                (false, false) => "the config's `data`",
            };
            notes.push(format!(
                "static quantization: {by} was given and no --mode (give --mode dynamic for dynamic)"
            ));
            (Mode::Static, format!("{by} without --mode"))
        }
        (None, None) => (
            Mode::Dynamic,
            "the default, with no --mode, --data or --ranges".into(),
        ),
    };
    check_uses(&args, &cfg, mode, &why)?;
    if mode == Mode::Static && !args.calib.data.is_empty() {
        let method = args.calib.method;
        let check = |given: &[(&str, String)]| {
            crate::method_flags::check(
                method.unwrap_or(CalibMethod::Minmax),
                method.is_some(),
                given,
            )
        };
        let (flags, from_config) = method_settings;
        check(&flags)?;
        // A config written for another method, overridden by --method: its settings for that
        // method are dropped with a note rather than refused (flags win over the config).
        if a.given.has("method") {
            for one in from_config {
                if let Err(e) = check(std::slice::from_ref(&one)) {
                    notes.push(format!("{e}; it is not used"));
                }
            }
        } else {
            check(&from_config)?;
        }
    }
    if !args.calib.data.is_empty() && args.ranges.is_some() {
        return Err(fail(
            "both calibration data (--data or `data`) and a ranges file (--ranges or `ranges`) were given",
            "give one: --data to calibrate here, or --ranges to use ranges from `onnxq calibrate`",
        ));
    }
    if mode == Mode::Static && args.calib.data.is_empty() && args.ranges.is_none() {
        return Err(fail(
            format!(
                "static quantization needs activation ranges ({why}), and no --data or --ranges was given"
            ),
            "give --data PATH (calibration samples: a .npz whose keys are the input names) or \
             --ranges FILE (from `onnxq calibrate`)",
        ));
    }
    Ok(Resolved {
        args,
        cfg,
        mode,
        notes,
    })
}

/// The method-specific calibration settings given, as the user wrote them: the flags and ORT's
/// extra options (from `--extra` or the config, both count as given outright), and the config
/// keys the command line does not override.
type Settings = Vec<(&'static str, String)>;
fn method_settings(a: &QuantizeArgs, cfg: &Config) -> (Settings, Settings) {
    let mut flags = crate::method_flags::given_flags(a.given.ids());
    let x = &cfg.extra_options;
    let extras = [
        (
            "symmetric",
            x.calib_symmetric.is_some(),
            "CalibTensorRangeSymmetric",
        ),
        (
            "moving_average",
            x.calib_moving_average.is_some(),
            "CalibMovingAverage",
        ),
        (
            "percentile",
            x.calib_percentile.is_some(),
            "CalibPercentile",
        ),
    ];
    let keys = [
        ("symmetric", cfg.symmetric.is_some()),
        ("moving_average", cfg.moving_average.is_some()),
        ("percentile", cfg.percentile.is_some()),
        ("num_bins", cfg.num_bins.is_some()),
        ("num_quantized_bins", cfg.num_quantized_bins.is_some()),
    ];
    for (id, set, shown) in extras {
        if set && !a.given.has(id) {
            flags.push((id, shown.to_owned()));
        }
    }
    let from_config = keys
        .into_iter()
        .filter(|(id, set)| *set && !a.given.has(id))
        .map(|(id, _)| (id, format!("`{id}` in the config")))
        .collect();
    (flags, from_config)
}

fn name(m: Mode) -> &'static str {
    match m {
        Mode::Dynamic => "dynamic",
        Mode::Static => "static",
        Mode::WeightOnly => "weight-only",
    }
}

/// The arguments with every config setting the command line did not give; the config's
/// calibration extra options move into the calibration settings (a flag still wins), so that
/// nothing downstream merges them again.
fn merge(a: &QuantizeArgs, cfg: &mut Config) -> QuantizeArgs {
    let mut m = a.clone();
    let given = |id: &str| a.given.has(id);
    macro_rules! take {
        ($($field:ident),*) => {$(
            if !given(stringify!($field)) && cfg.$field.is_some() {
                m.$field = cfg.$field.clone();
            }
        )*};
    }
    take!(
        mode,
        format,
        weight_type,
        activation_type,
        overrides,
        ranges,
        report,
        html
    );
    macro_rules! flag {
        ($($field:ident),*) => {$(
            if !given(stringify!($field)) {
                m.$field = cfg.$field.unwrap_or(false);
            }
        )*};
    }
    flag!(
        per_channel,
        conv_per_channel,
        reduce_range,
        enable_subgraph,
        dynamic_b,
        force_ranges,
        measure
    );
    macro_rules! list {
        ($($field:ident),*) => {$(
            if !given(stringify!($field)) {
                m.$field = cfg.$field.clone().unwrap_or_default();
            }
        )*};
    }
    list!(op_types, include, exclude);
    let w = &mut m.weight_only;
    w.bits = w.bits.or(cfg.bits);
    w.block_size = w.block_size.or(cfg.block_size);
    w.accuracy_level = w.accuracy_level.or(cfg.accuracy_level);
    w.algo = w.algo.or(cfg.algo);
    w.lm_head_bits = w.lm_head_bits.or(cfg.lm_head_bits);
    if !given("fold_bias") {
        w.fold_bias = cfg.fold_bias.unwrap_or(false);
    }
    if !given("quant_axes") {
        w.quant_axes = cfg.quant_axes.clone().unwrap_or_default();
    }
    w.percdamp = w.percdamp.or(cfg.percdamp);
    if !given("act_order") {
        w.act_order = cfg.act_order.unwrap_or(false);
    }
    w.gptq_memory = w.gptq_memory.clone().or(cfg.gptq_memory.clone());
    merge_recovery(&mut m.recovery, cfg, |id| given(id));
    let x = &mut cfg.extra_options;
    let c = &mut m.calib;
    if !given("data") {
        c.data = cfg.data.clone().unwrap_or_default();
    }
    if !given("method") {
        c.method = cfg.method;
    }
    if !given("symmetric") {
        c.symmetric = cfg.symmetric.or(x.calib_symmetric);
    }
    if !given("moving_average") {
        c.moving_average = cfg
            .moving_average
            .or(x.calib_moving_average)
            .unwrap_or(false);
    }
    if !given("percentile")
        && let Some(p) = cfg.percentile.or(x.calib_percentile)
    {
        c.percentile = p;
    }
    if !given("num_bins") {
        c.num_bins = c.num_bins.or(cfg.num_bins);
    }
    if !given("num_quantized_bins")
        && let Some(n) = cfg.num_quantized_bins
    {
        c.num_quantized_bins = n;
    }
    if !given("engine")
        && let Some(e) = cfg.engine
    {
        c.engine = e;
    }
    if !given("ort_lib") {
        c.ort_lib = c.ort_lib.clone().or(cfg.ort_lib.clone());
    }
    if !given("threads")
        && let Some(t) = cfg.threads
    {
        c.threads = t;
    }
    (
        x.calib_symmetric,
        x.calib_moving_average,
        x.calib_percentile,
    ) = (None, None, None);
    m
}

/// The recovery flags with the config's settings the command line did not give.
fn merge_recovery(
    r: &mut crate::recovery_args::RecoveryArgs,
    cfg: &Config,
    given: impl Fn(&str) -> bool,
) {
    if !given("smooth_quant") {
        r.smooth_quant = cfg.smooth_quant.unwrap_or(false);
    }
    if !given("bias_correction") {
        r.bias_correction = cfg.bias_correction.unwrap_or(false);
    }
    r.smooth_quant_alpha = r
        .smooth_quant_alpha
        .or(cfg.smooth_quant_alpha.map(|a| a as f32));
    r.smooth_quant_folding = r.smooth_quant_folding.or(cfg.smooth_quant_folding);
    r.rewritten = r.rewritten.clone().or(cfg.rewritten.clone());
    r.equalize = r.equalize.or(cfg.equalize);
    r.weight_rounding = r.weight_rounding.or(cfg.weight_rounding);
}

/// Refuses every given option (flag, config key, extra option) that `mode` does not use.
fn check_uses(a: &QuantizeArgs, cfg: &Config, mode: Mode, why: &str) -> Result<()> {
    let flags = a.given.ids().filter_map(|id| {
        OPTIONS
            .iter()
            .find(|o| o.id == id)
            .map(|o| (format!("`{}`", flag(id)), o.uses))
    });
    let calibrating = !a.calib.data.is_empty();
    // --measure and --html run both models on the samples, whatever the mode.
    let runs_samples = a.measure || a.html.is_some();
    let mut unused: Vec<(String, Uses)> = flags
        .chain(cfg.given.iter().cloned())
        .filter(|(_, uses)| !uses.used_in(mode, calibrating))
        .filter(|(_, uses)| !(runs_samples && matches!(uses, Uses::Data | Uses::RunsData)))
        .collect();
    if unused.is_empty() {
        return Ok(());
    }
    // One kind at a time, so the message and hint fit every option named.
    unused.sort_by_key(|(_, u)| *u as u8);
    let kind = unused[0].1;
    let names: Vec<&str> = unused
        .iter()
        .filter(|(_, u)| *u == kind)
        .map(|(n, _)| n.as_str())
        .collect();
    let (list, verb) = match names.split_last() {
        Some((last, [])) => ((*last).to_owned(), "is an option"),
        Some((last, rest)) => (format!("{} and {last}", rest.join(", ")), "are options"),
        None => return Ok(()),
    };
    let chosen = match mode {
        Mode::Static if !calibrating => "static with --ranges",
        m => name(m),
    };
    Err(fail(
        format!(
            "{list} {verb} {}, but this quantization is {chosen} ({why})",
            kind.users()
        ),
        unused_hint(kind, mode, &list, a.mode.is_some() || cfg.mode.is_some()),
    ))
}

/// What to do about options of `kind` that a `mode` run does not read.
fn unused_hint(kind: Uses, mode: Mode, list: &str, mode_given: bool) -> String {
    match (kind, mode) {
        (Uses::RunsData, Mode::WeightOnly) => format!(
            "only --algo gptq runs the model, on --data: drop {list}, or give --algo gptq --data PATH"
        ),
        (Uses::Calibration | Uses::CalibrationOrWeightOnly | Uses::RunsData, Mode::Static) => {
            format!(
                "--ranges gives ranges calibrated already: drop {list}, or calibrate here with --data \
             instead of --ranges (or pass them to `onnxq calibrate`)"
            )
        }
        (Uses::Dynamic, _) => format!("drop {list}, or give --mode dynamic"),
        (Uses::Integer, Mode::WeightOnly) => format!(
            "drop {list}: weight-only blocks have a scale per block of K in every output channel \
             (--bits and --block-size set them)"
        ),
        (Uses::WeightOnly, _) => format!("drop {list}, or give --mode weight-only"),
        (Uses::Data, _) => format!(
            "drop {list}, or give --mode static, --measure or --html, which run on the samples"
        ),
        (Uses::StaticOrWeightOnly, _) => {
            format!("drop {list}, or give --mode static (with --data) or --mode weight-only")
        }
        (Uses::CalibrationOrWeightOnly, _) => format!(
            "drop {list}, or give --mode weight-only (symmetric blocks) or --mode static with \
             --data (symmetric ranges)"
        ),
        _ if mode_given => format!("drop {list}, or give --mode static with --data or --ranges"),
        _ => format!(
            "give --data PATH (calibration samples) or --ranges FILE to quantize statically, or \
             drop {list}"
        ),
    }
}

fn qtype(t: QType, flag: &str) -> Result<QuantType> {
    Ok(match t {
        QType::Int8 => QuantType::I8,
        QType::Uint8 => QuantType::U8,
        QType::Int16 => QuantType::I16,
        QType::Uint16 => QuantType::U16,
        QType::Int4 => QuantType::I4,
        QType::Uint4 => QuantType::U4,
        QType::Float8 => {
            return Err(fail(
                format!("{flag} QFLOAT8E4M3FN is not supported"),
                "ONNX Runtime 1.31's CPU provider cannot run the float8 QDQ model ORT's tool \
                 writes; use int8 (or int16 for more precision)",
            ));
        }
    })
}

pub(crate) fn dynamic_options(a: &QuantizeArgs, cfg: &Config) -> Result<DynamicOptions> {
    let weight_type = qtype(a.weight_type.unwrap_or(QType::Int8), "--weight-type")?;
    if !matches!(weight_type, QuantType::I8 | QuantType::U8) {
        return Err(fail(
            "dynamic quantization takes int8 or uint8 weights (ONNX Runtime's integer kernels)",
            "give --weight-type int8 (or uint8); 16- and 4-bit weights need --mode static \
             with --data or --ranges",
        ));
    }
    let x = &cfg.extra_options;
    Ok(DynamicOptions {
        weight_type,
        per_channel: a.per_channel,
        reduce_range: a.reduce_range,
        op_types: a.op_types.clone(),
        include: a.include.clone(),
        exclude: a.exclude.clone(),
        matmul_const_b_only: !a.dynamic_b && x.matmul_const_b_only.unwrap_or(true),
        enable_subgraph: a.enable_subgraph || x.enable_subgraph.unwrap_or(false),
        weight_symmetric: x.weight_symmetric,
        conv_per_channel: a.conv_per_channel,
    })
}

pub(crate) fn static_options(a: &QuantizeArgs, cfg: &Config) -> Result<StaticOptions> {
    let x = &cfg.extra_options;
    let activation_type = qtype(
        a.activation_type.unwrap_or(QType::Int8),
        "--activation-type",
    )?;
    if activation_type.storage_bits() == 4 {
        return Err(fail(
            "4-bit activations are not supported; 4-bit types are for weights",
            "give --activation-type int8, uint8, int16 or uint16 (and --weight-type int4 for \
             4-bit weights)",
        ));
    }
    let weight_type = qtype(a.weight_type.unwrap_or(QType::Int8), "--weight-type")?;
    if activation_type == QuantType::I8 && weight_type == QuantType::U8 {
        return Err(fail(
            "int8 activations with uint8 weights is not a combination ONNX Runtime has kernels for \
             (its tool refuses it too)",
            "use --weight-type int8, or --activation-type uint8 with uint8 weights",
        ));
    }
    let d = StaticOptions::default();
    Ok(StaticOptions {
        activation_type,
        weight_type,
        per_channel: a.per_channel,
        reduce_range: a.reduce_range,
        op_types: a.op_types.clone(),
        include: a.include.clone(),
        exclude: a.exclude.clone(),
        activation_symmetric: x.activation_symmetric.unwrap_or(d.activation_symmetric),
        weight_symmetric: x.weight_symmetric,
        quantize_bias: x.quantize_bias.unwrap_or(d.quantize_bias),
        keep_removable_activations: x
            .keep_removable_activations
            .unwrap_or(d.keep_removable_activations),
        disable_weight_adjust: x.disable_weight_adjust.unwrap_or(d.disable_weight_adjust),
        force_quantize_no_input_check: x
            .force_quantize_no_input_check
            .unwrap_or(d.force_quantize_no_input_check),
        exclude_output_quantization: x.exclude_output_quantization.clone().unwrap_or_default(),
        contrib_ops: x.contrib_ops.unwrap_or(d.contrib_ops),
        dedicated_qdq_pair: x.dedicated_qdq_pair.unwrap_or(d.dedicated_qdq_pair),
        qoperator: a.format == Some(Format::Qoperator),
        min_real_range: x.min_real_range,
        restricted_asymmetric: x.restricted_asymmetric.unwrap_or(false),
        overrides: match &a.overrides {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read overrides `{}`", path.display()))
                    .hint("give --overrides the path of a JSON file")?;
                serde_json::from_str(&text)
                    .with_context(|| format!("overrides `{}`", path.display()))
                    .hint(
                        "the file is ORT's TensorQuantOverrides as JSON: \
                         {\"tensor\": [{\"quant_type\": \"QUInt16\", \"symmetric\": true}]}",
                    )?
            }
            None => x.tensor_quant_overrides.clone().unwrap_or_default(),
        },
        // The Hessians are collected after calibration (`quantize/rounding.rs`).
        rounding: None,
    })
}

/// ONNX Runtime's default op list for `quantize_dynamic` (its IntegerOps registry): a list
/// holding all of it was passed wholesale, so its types missing here are a note, not an error.
const ORT_DYNAMIC_OPS: &[&str] = &[
    "Conv",
    "MatMul",
    "Attention",
    "LSTM",
    "Gather",
    "Transpose",
    "EmbedLayerNormalization",
];

/// Checks `--op-types` against the model and the mode: an entry the model lacks, or the mode
/// cannot quantize, is an error (a misspelling gets "did you mean"), except in a list that holds
/// ORT's whole default list for the mode, where the missing ones are one note.
pub(crate) fn check_op_types(
    model: &onnxq_ir::Model,
    mode: Mode,
    op_types: &[String],
) -> Result<Vec<String>> {
    if op_types.is_empty() {
        return Ok(Vec::new());
    }
    let mut present = BTreeSet::new();
    collect_ops(&model.graph, &mut present);
    let (quantizable, ort_list): (Vec<&str>, Vec<&str>) = match mode {
        Mode::Dynamic => (
            onnxq_quant::ops::DYNAMIC_OPS
                .iter()
                .map(|o| o.op_type())
                .collect(),
            ORT_DYNAMIC_OPS.to_vec(),
        ),
        Mode::WeightOnly => (
            onnxq_quant::weight_only::options::WEIGHT_ONLY_OPS.to_vec(),
            vec!["MatMul"],
        ),
        Mode::Static => {
            let rules = onnxq_quant::ops::static_ops::STATIC_OPS;
            let all = rules
                .iter()
                .chain(onnxq_quant::ops::static_ops::ON_REQUEST_OPS);
            (
                all.map(|(t, _)| *t).collect(),
                rules.iter().map(|(t, _)| *t).collect(),
            )
        }
    };
    // Static quantization takes any ONNX op type given (the generic rule), dynamic only its
    // registry's.
    let can = |t: &str| match mode {
        Mode::Dynamic | Mode::WeightOnly => quantizable.contains(&t),
        Mode::Static => true,
    };
    let wholesale = ort_list.iter().all(|t| op_types.iter().any(|o| o == t));
    let mut skipped = Vec::new();
    for t in op_types {
        let in_model = present.contains(t.as_str());
        if in_model && can(t) {
            continue;
        }
        if wholesale && ort_list.contains(&t.as_str()) {
            skipped.push(t.as_str());
            continue;
        }
        let mode_name = name(mode);
        if in_model {
            return Err(fail(
                format!("--op-types `{t}`: {mode_name} quantization cannot quantize `{t}`"),
                format!(
                    "{mode_name} quantization quantizes {}; drop `{t}`, or use --mode static \
                     (with --data or --ranges), which quantizes any op type listed",
                    quantizable.join(", ")
                ),
            ));
        }
        let names = present
            .iter()
            .map(String::as_str)
            .chain(quantizable.iter().copied());
        let hint = match did_you_mean(t, names) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!(
                "the model's op types are {}; `onnxq inspect` lists them",
                present.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        };
        return Err(fail(
            format!("--op-types `{t}`: the model has no `{t}` node"),
            hint,
        ));
    }
    Ok(if skipped.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "--op-types: {} not in the model or not quantized in {} mode (ORT's list, taken as a whole)",
            skipped.join(", "),
            name(mode)
        )]
    })
}

/// The op types of `g` and its subgraphs.
fn collect_ops(g: &onnxq_ir::Graph, out: &mut BTreeSet<String>) {
    for (_, n) in g.nodes() {
        out.insert(n.op_type().to_owned());
        for sub in n.attributes.iter().flat_map(|a| &a.subgraphs) {
            collect_ops(sub, out);
        }
    }
}
