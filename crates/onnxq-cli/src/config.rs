//! The `--config` TOML file and `--extra KEY=VALUE`: every quantize option under onnxq's names
//! (the flag without `--`, `_` for `-`) or ONNX Runtime's argument names, plus ORT's
//! `extra_options` keys. Values take ORT's spellings (`QInt8`, `QDQ`, `MinMax`, Python's
//! `True`/`False`). Unknown keys and bad values are errors naming the key, the value and the line,
//! never ignored; ORT options onnxq does not support yet say so, and what to do instead.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::ValueEnum;

use crate::args::{CalibMethod, Engine, Format, Mode, QType, WeightOnlyAlgo};
pub(crate) mod keys;

use crate::util::{HintExt, did_you_mean, fail};
use keys::{EXTRA, Kind, OPTIONS, UNSUPPORTED, Uses};

/// The file's and `--extra`'s settings; every field optional, so flags and defaults fill the rest.
#[derive(Debug, Default)]
pub(crate) struct Config {
    pub(crate) mode: Option<Mode>,
    pub(crate) format: Option<Format>,
    pub(crate) weight_type: Option<QType>,
    pub(crate) activation_type: Option<QType>,
    pub(crate) method: Option<CalibMethod>,
    pub(crate) engine: Option<Engine>,
    pub(crate) per_channel: Option<bool>,
    pub(crate) reduce_range: Option<bool>,
    pub(crate) conv_per_channel: Option<bool>,
    pub(crate) enable_subgraph: Option<bool>,
    pub(crate) dynamic_b: Option<bool>,
    pub(crate) symmetric: Option<bool>,
    pub(crate) moving_average: Option<bool>,
    pub(crate) op_types: Option<Vec<String>>,
    pub(crate) include: Option<Vec<String>>,
    pub(crate) exclude: Option<Vec<String>>,
    pub(crate) data: Option<Vec<PathBuf>>,
    pub(crate) ranges: Option<PathBuf>,
    pub(crate) force_ranges: Option<bool>,
    pub(crate) overrides: Option<PathBuf>,
    pub(crate) report: Option<PathBuf>,
    pub(crate) html: Option<PathBuf>,
    pub(crate) measure: Option<bool>,
    pub(crate) smooth_quant: Option<bool>,
    pub(crate) smooth_quant_alpha: Option<f64>,
    pub(crate) smooth_quant_folding: Option<bool>,
    pub(crate) rewritten: Option<PathBuf>,
    pub(crate) equalize: Option<crate::recovery_args::EqualizeMode>,
    pub(crate) bias_correction: Option<bool>,
    pub(crate) weight_rounding: Option<crate::recovery_args::WeightRounding>,
    pub(crate) ort_lib: Option<PathBuf>,
    pub(crate) percentile: Option<f64>,
    pub(crate) num_bins: Option<usize>,
    pub(crate) num_quantized_bins: Option<usize>,
    pub(crate) threads: Option<usize>,
    pub(crate) bits: Option<u32>,
    pub(crate) block_size: Option<usize>,
    pub(crate) accuracy_level: Option<u8>,
    pub(crate) algo: Option<WeightOnlyAlgo>,
    pub(crate) quant_axes: Option<Vec<String>>,
    pub(crate) lm_head_bits: Option<u32>,
    pub(crate) fold_bias: Option<bool>,
    pub(crate) nodes: Option<Vec<onnxq_quant::NodeSettings>>,
    pub(crate) percdamp: Option<f64>,
    pub(crate) act_order: Option<bool>,
    pub(crate) gptq_memory: Option<String>,
    pub(crate) extra_options: ExtraOptions,
    /// Every setting given, as it should be named in an error, with the mode that uses it.
    pub(crate) given: Vec<(String, Uses)>,
}

/// ONNX Runtime's `extra_options` that onnxq honours, under ORT's names.
#[derive(Debug, Default)]
pub(crate) struct ExtraOptions {
    pub(crate) matmul_const_b_only: Option<bool>,
    pub(crate) enable_subgraph: Option<bool>,
    pub(crate) weight_symmetric: Option<bool>,
    pub(crate) activation_symmetric: Option<bool>,
    pub(crate) quantize_bias: Option<bool>,
    pub(crate) keep_removable_activations: Option<bool>,
    pub(crate) disable_weight_adjust: Option<bool>,
    pub(crate) force_quantize_no_input_check: Option<bool>,
    pub(crate) exclude_output_quantization: Option<Vec<String>>,
    pub(crate) contrib_ops: Option<bool>,
    pub(crate) calib_symmetric: Option<bool>,
    pub(crate) calib_moving_average: Option<bool>,
    pub(crate) calib_percentile: Option<f64>,
    pub(crate) restricted_asymmetric: Option<bool>,
    pub(crate) min_real_range: Option<f32>,
    pub(crate) dedicated_qdq_pair: Option<bool>,
    pub(crate) tensor_quant_overrides: Option<onnxq_quant::overrides::Overrides>,
}

/// Where a setting came from, for error messages.
struct Source<'a> {
    /// "config `c.toml`" or "--extra".
    name: String,
    /// The config's text, to find a key's line; empty for `--extra`.
    text: &'a str,
    /// The folder relative paths are resolved against (the config file's).
    base: PathBuf,
}

impl Source<'_> {
    /// "config `c.toml` line 3" or "--extra `KEY=VALUE`".
    fn place(&self, section: Option<&str>, key: &str, value: &toml::Value) -> String {
        if self.text.is_empty() {
            return format!("--extra `{key}={}`", show(value));
        }
        match line_of(self.text, section, key) {
            Some(line) => format!("{} line {line}", self.name),
            None => self.name.clone(),
        }
    }

    /// [`Source::place`] with the setting: "config `c.toml` line 3: `key = value`".
    fn at(&self, section: Option<&str>, key: &str, value: &toml::Value) -> String {
        let place = self.place(section, key, value);
        if self.text.is_empty() {
            place
        } else {
            format!("{place}: `{key} = {value}`")
        }
    }
}

/// A value as the user wrote it (strings without TOML's quotes).
fn show(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// The 1-based line of `key` in `section` (`None`: the top level) of a TOML text.
fn line_of(text: &str, section: Option<&str>, key: &str) -> Option<usize> {
    let mut current: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(h) = t.strip_prefix('[') {
            current = Some(h.trim_end_matches(']').trim().to_owned());
            continue;
        }
        let Some((k, _)) = t.split_once('=') else {
            continue;
        };
        let k = k.trim().trim_matches(|c| c == '"' || c == '\'');
        if k == key && current.as_deref() == section {
            return Some(i + 1);
        }
    }
    None
}

/// The 1-based line of byte `offset` in `text`.
fn line_at(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |t| t.matches('\n').count() + 1)
}

/// Reads and checks the config file (if any) with `extra` entries (`KEY=VALUE`, ORT's
/// `extra_options` names; the value in TOML syntax, else taken as a string) set over its
/// `[extra_options]`.
pub(crate) fn load(path: Option<&Path>, extra: &[String]) -> Result<Config> {
    let mut cfg = Config::default();
    if let Some(path) = path {
        let text = std::fs::read_to_string(path)
            .map_err(anyhow::Error::from)
            .map_err(|e| e.context(format!("cannot read config `{}`", path.display())))
            .hint("give --config the path of a TOML file")?;
        let name = format!("config `{}`", path.display());
        let table: toml::Table = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| format!(" line {}", line_at(&text, s.start)));
            fail(
                format!("{name}{}: {}", line.unwrap_or_default(), e.message().trim()),
                "the config is TOML: `key = value`, strings in quotes, booleans `true` or `false`, \
                 lists `[\"a\", \"b\"]`, ORT's extra options under `[extra_options]`",
            )
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let src = Source {
            name,
            text: &text,
            base,
        };
        for (key, value) in table {
            if key == "extra_options" {
                let toml::Value::Table(options) = value else {
                    return Err(fail(
                        format!("{}: `extra_options` is not a table", src.name),
                        "write ORT's extra options under a `[extra_options]` header, one \
                         `Name = value` a line",
                    ));
                };
                for (k, v) in options {
                    set_extra(&mut cfg, &src, &k, v)?;
                }
            } else {
                set_option(&mut cfg, &src, &key, value)?;
            }
        }
    }
    let src = Source {
        name: "--extra".to_owned(),
        text: "",
        base: PathBuf::new(),
    };
    for entry in extra {
        let (key, value) = entry.split_once('=').ok_or_else(|| {
            fail(
                format!("--extra `{entry}`: expected KEY=VALUE"),
                "give one of ORT's extra options with its value, e.g. `--extra ActivationSymmetric=true`",
            )
        })?;
        let value = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.to_owned()));
        set_extra(&mut cfg, &src, key.trim(), value)?;
    }
    Ok(cfg)
}

/// One top-level config key.
fn set_option(cfg: &mut Config, src: &Source<'_>, key: &str, value: toml::Value) -> Result<()> {
    let Some(opt) = OPTIONS
        .iter()
        .find(|o| o.config && (o.id == key || o.ort.contains(&key)))
    else {
        let names = OPTIONS
            .iter()
            .filter(|o| o.config)
            .flat_map(|o| std::iter::once(o.id).chain(o.ort.iter().copied()));
        let hint = if let Some(best) = did_you_mean(key, names) {
            format!("did you mean `{best}`?")
        } else if EXTRA.iter().any(|e| e.name == key) || UNSUPPORTED.iter().any(|(n, _)| *n == key)
        {
            format!("`{key}` is one of ORT's extra options: put it under `[extra_options]`")
        } else if key == "model" || key == "output" || key == "config" || key == "extra" {
            format!("`{key}` is given on the command line only")
        } else {
            "the keys are the quantize flags without `--` and with `_` for `-` (`per_channel`, \
             `num_bins`, `data`, ...) or ORT's argument names (`quant_format`, \
             `op_types_to_quantize`, `nodes_to_exclude`, ...); `onnxq quantize --help` lists the flags"
                .to_owned()
        };
        return Err(fail(
            format!("{}: unknown field `{key}`", src.place(None, key, &value)),
            hint,
        ));
    };
    let at = src.at(None, key, &value);
    let bad = |what: &str, hint: String| fail(format!("{at}: {what}"), hint);
    macro_rules! put {
        ($field:ident, $parse:expr) => {
            cfg.$field = Some($parse(&value).map_err(|(what, hint)| bad(what, hint))?)
        };
    }
    match opt.id {
        "mode" => put!(mode, choice::<Mode>),
        "format" => put!(format, choice::<Format>),
        "weight_type" => put!(weight_type, choice::<QType>),
        "activation_type" => put!(activation_type, choice::<QType>),
        "method" => put!(method, choice::<CalibMethod>),
        "engine" => put!(engine, choice::<Engine>),
        "per_channel" => put!(per_channel, boolean),
        "reduce_range" => put!(reduce_range, boolean),
        "conv_per_channel" => put!(conv_per_channel, boolean),
        "enable_subgraph" => put!(enable_subgraph, boolean),
        "dynamic_b" => put!(dynamic_b, boolean),
        "symmetric" => put!(symmetric, boolean),
        "moving_average" => put!(moving_average, boolean),
        "op_types" => put!(op_types, strings),
        "include" => put!(include, strings),
        "exclude" => put!(exclude, strings),
        "percentile" => put!(percentile, number),
        "num_bins" => put!(num_bins, count),
        "num_quantized_bins" => put!(num_quantized_bins, count),
        "threads" => put!(threads, count),
        "bits" => put!(bits, |v| count(v).map(|n| n as u32)),
        "block_size" => put!(block_size, count),
        "accuracy_level" => put!(accuracy_level, level),
        "algo" => put!(algo, choice::<WeightOnlyAlgo>),
        "quant_axes" => put!(quant_axes, strings),
        "lm_head_bits" => put!(lm_head_bits, |v| count(v).map(|n| n as u32)),
        "nodes" => put!(nodes, node_settings),
        "fold_bias" => put!(fold_bias, boolean),
        "percdamp" => put!(percdamp, number),
        "act_order" => put!(act_order, boolean),
        "gptq_memory" => put!(gptq_memory, size),
        "data" => {
            let files = strings(&value).map_err(|(w, h)| bad(w, h))?;
            cfg.data = Some(files.iter().map(|f| src.base.join(f)).collect());
        }
        "ranges" => put!(ranges, |v| path(v, &src.base)),
        "force_ranges" => put!(force_ranges, boolean),
        "overrides" => put!(overrides, |v| path(v, &src.base)),
        "report" => put!(report, |v| path(v, &src.base)),
        "html" => put!(html, |v| path(v, &src.base)),
        "measure" => put!(measure, boolean),
        "smooth_quant" => put!(smooth_quant, boolean),
        "smooth_quant_alpha" => put!(smooth_quant_alpha, number),
        "smooth_quant_folding" => put!(smooth_quant_folding, boolean),
        "rewritten" => put!(rewritten, |v| path(v, &src.base)),
        "equalize" => put!(equalize, choice),
        "bias_correction" => put!(bias_correction, boolean),
        "weight_rounding" => put!(weight_rounding, choice),
        "ort_lib" => put!(ort_lib, |v| path(v, &src.base)),
        id => {
            return Err(anyhow::anyhow!(
                "internal error: config key `{id}` has no setter"
            ))
            .hint("this is a bug in onnxq; please report it");
        }
    }
    cfg.given
        .push((format!("`{key}` in {}", src.name), opt.uses));
    Ok(())
}

/// One of ORT's extra options (from `[extra_options]` or `--extra`).
fn set_extra(cfg: &mut Config, src: &Source<'_>, key: &str, value: toml::Value) -> Result<()> {
    // ORT's extra options that are onnxq flags too (SmoothQuant...) take the flag's setter.
    if key.starts_with(char::is_uppercase) && OPTIONS.iter().any(|o| o.ort.contains(&key)) {
        return set_option(cfg, src, key, value);
    }
    let at = src.at(Some("extra_options"), key, &value);
    if let Some((_, todo)) = UNSUPPORTED.iter().find(|(n, _)| *n == key) {
        return Err(fail(
            format!("{at}: ORT's extra option `{key}` is not supported by onnxq yet"),
            *todo,
        ));
    }
    let Some(opt) = EXTRA.iter().find(|e| e.name == key) else {
        let names = EXTRA
            .iter()
            .map(|e| e.name)
            .chain(UNSUPPORTED.iter().map(|(n, _)| *n));
        let hint = match did_you_mean(key, names) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!(
                "ORT's extra options onnxq supports: {}",
                EXTRA.iter().map(|e| e.name).collect::<Vec<_>>().join(", ")
            ),
        };
        let place = src.place(Some("extra_options"), key, &value);
        return Err(fail(format!("{place}: unknown field `{key}`"), hint));
    };
    let bad = |(what, hint): (&str, String)| fail(format!("{at}: {what}"), hint);
    let x = &mut cfg.extra_options;
    match opt.kind {
        Kind::Bool => {
            let b = Some(boolean(&value).map_err(bad)?);
            match key {
                "MatMulConstBOnly" => x.matmul_const_b_only = b,
                "EnableSubgraph" => x.enable_subgraph = b,
                "WeightSymmetric" => x.weight_symmetric = b,
                "ActivationSymmetric" => x.activation_symmetric = b,
                "QuantizeBias" => x.quantize_bias = b,
                "QDQKeepRemovableActivations" => x.keep_removable_activations = b,
                "QDQDisableWeightAdjustForInt32Bias" => x.disable_weight_adjust = b,
                "ForceQuantizeNoInputCheck" => x.force_quantize_no_input_check = b,
                "UseQDQContribOps" => x.contrib_ops = b,
                "CalibTensorRangeSymmetric" => x.calib_symmetric = b,
                "CalibMovingAverage" => x.calib_moving_average = b,
                "ActivationRestrictedAsymmetric" => x.restricted_asymmetric = b,
                _ => x.dedicated_qdq_pair = b,
            }
        }
        Kind::Number => {
            let n = number(&value).map_err(bad)?;
            if key == "CalibPercentile" {
                if !(0.0..=100.0).contains(&n) {
                    return Err(bad((
                        "a percentile is between 0 and 100",
                        "e.g. 99.999".into(),
                    )));
                }
                x.calib_percentile = Some(n);
            } else {
                x.min_real_range = Some(n as f32);
            }
        }
        Kind::Strings => x.exclude_output_quantization = Some(strings(&value).map_err(bad)?),
        Kind::Overrides => x.tensor_quant_overrides = Some(overrides(value).map_err(bad)?),
    }
    cfg.given
        .push((format!("extra option `{key}` ({})", src.name), opt.uses));
    Ok(())
}

/// A value problem: what is wrong, and the hint.
type Bad = (&'static str, String);

/// An enum value under onnxq's or ORT's name, case-insensitively.
fn choice<T: ValueEnum>(v: &toml::Value) -> Result<T, Bad> {
    let names = || {
        T::value_variants()
            .iter()
            .filter_map(|t| t.to_possible_value())
            .filter(|p| !p.is_hide_set())
            .map(|p| p.get_name().to_owned())
            .collect::<Vec<_>>()
    };
    let toml::Value::String(s) = v else {
        return Err((
            "expected a string",
            format!("one of {}", names().join(", ")),
        ));
    };
    T::from_str(s, true).map_err(|_| {
        let all = names();
        let hint = match did_you_mean(s, all.iter().map(String::as_str)) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!(
                "one of {} (ORT's names, such as `QInt8`, `QDQ` or `MinMax`, work too)",
                all.join(", ")
            ),
        };
        ("not a value this option takes", hint)
    })
}

/// A boolean: TOML's, or as a string or number the way Python writes them (`True`, `1`).
fn boolean(v: &toml::Value) -> Result<bool, Bad> {
    let b = match v {
        toml::Value::Boolean(b) => Some(*b),
        toml::Value::Integer(0) => Some(false),
        toml::Value::Integer(1) => Some(true),
        toml::Value::String(s) => match s.to_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    };
    b.ok_or((
        "expected a boolean",
        "give true or false (Python's True and False, and 1 or 0, work too)".to_owned(),
    ))
}

fn number(v: &toml::Value) -> Result<f64, Bad> {
    match v {
        toml::Value::Float(f) if f.is_finite() => Ok(*f),
        toml::Value::Integer(i) => Ok(*i as f64),
        _ => Err(("expected a finite number", "e.g. 0.0001".to_owned())),
    }
}

fn count(v: &toml::Value) -> Result<usize, Bad> {
    match v {
        toml::Value::Integer(i) if *i >= 1 => {
            usize::try_from(*i).map_err(|_| ("too large", String::new()))
        }
        _ => Err(("expected a whole number of at least 1", "e.g. 4".to_owned())),
    }
}

/// A memory size: a number of bytes, or a string with a unit (`"2GiB"`), checked when used.
fn size(v: &toml::Value) -> Result<String, Bad> {
    match v {
        toml::Value::Integer(i) if *i >= 1 => Ok(i.to_string()),
        toml::Value::String(s) => Ok(s.clone()),
        _ => Err((
            "expected a size",
            "bytes, or a string with KiB, MiB or GiB, e.g. \"2GiB\"".to_owned(),
        )),
    }
}

/// MatMulNBits' accuracy level, 0 to 4.
fn level(v: &toml::Value) -> Result<u8, Bad> {
    match v {
        toml::Value::Integer(i @ 0..=4) => Ok(*i as u8),
        _ => Err((
            "expected an accuracy level from 0 to 4",
            "0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8".to_owned(),
        )),
    }
}

/// A list of strings, as a TOML array or one comma-separated string.
fn strings(v: &toml::Value) -> Result<Vec<String>, Bad> {
    let bad = || {
        (
            "expected a list of strings",
            "e.g. [\"Conv\", \"MatMul\"] (or one string \"Conv,MatMul\")".to_owned(),
        )
    };
    match v {
        toml::Value::String(s) => Ok(s.split(',').map(|t| t.trim().to_owned()).collect()),
        toml::Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned).ok_or_else(bad))
            .collect(),
        _ => Err(bad()),
    }
}

fn path(v: &toml::Value, base: &Path) -> Result<PathBuf, Bad> {
    match v {
        toml::Value::String(s) => Ok(base.join(s)),
        _ => Err((
            "expected a path (a string)",
            "relative paths are read from the config file's folder".to_owned(),
        )),
    }
}

/// `TensorQuantOverrides`: a TOML table, or a JSON string (as ORT's users have them).
fn overrides(v: toml::Value) -> Result<onnxq_quant::overrides::Overrides, Bad> {
    let hint = |e: String| {
        format!("{e}; the format is ORT's: {{\"tensor\": [{{\"quant_type\": \"QUInt16\", ...}}]}}")
    };
    match v {
        toml::Value::String(s) => serde_json::from_str(&s)
            .map_err(|e| ("not a valid TensorQuantOverrides", hint(e.to_string()))),
        v => v.try_into().map_err(|e: toml::de::Error| {
            (
                "not a valid TensorQuantOverrides",
                hint(e.message().to_owned()),
            )
        }),
    }
}

/// Per-node weight-only settings (ORT's `customized_weight_config`): a table from node name or
/// glob to `"fp32"` (keep float) or a table of `bits`, `group_size`/`block_size` and
/// `scheme` (`"sym"`/`"asym"`) or `symmetric`.
fn node_settings(v: &toml::Value) -> Result<Vec<onnxq_quant::NodeSettings>, Bad> {
    const FORM: &str = "e.g. `[customized_weight_config]` then `\"/lm_head/MatMul\" = { bits = 8 }` \
                        or `\"/layers.0/*\" = \"fp32\"`";
    let toml::Value::Table(t) = v else {
        return Err(("expected a table of node names", FORM.to_owned()));
    };
    let mut out = Vec::new();
    for (pattern, v) in t {
        let mut n = onnxq_quant::NodeSettings {
            pattern: pattern.clone(),
            bits: None,
            block_size: None,
            symmetric: None,
            float: false,
        };
        match v {
            toml::Value::String(s) if matches!(s.as_str(), "fp32" | "float" | "fp16") => {
                n.float = true;
            }
            toml::Value::Table(keys) => {
                for (k, v) in keys {
                    match k.as_str() {
                        "bits" => n.bits = Some(count(v)? as u32),
                        "group_size" | "block_size" => n.block_size = Some(count(v)?),
                        "symmetric" => n.symmetric = Some(boolean(v)?),
                        "scheme" => {
                            n.symmetric = Some(match v.as_str() {
                                Some("sym") => true,
                                Some("asym") => false,
                                _ => {
                                    return Err((
                                        "`scheme` is \"sym\" or \"asym\"",
                                        FORM.to_owned(),
                                    ));
                                }
                            })
                        }
                        _ => {
                            return Err((
                                "a node entry takes bits, group_size (or block_size) and scheme \
                                 (or symmetric)",
                                FORM.to_owned(),
                            ));
                        }
                    }
                }
            }
            _ => return Err(("a node entry is \"fp32\" or a table", FORM.to_owned())),
        }
        out.push(n);
    }
    Ok(out)
}
