//! `quantize --auto`'s flags, flattened into its arguments: the measured search for the fastest
//! static model that keeps a stated accuracy on held-out samples.

use clap::Args;

/// The accuracy a candidate must keep against the float model on the held-out samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Target {
    /// The lowest output cosine similarity.
    Cos(f64),
    /// The lowest output SQNR (dB).
    Sqnr(f64),
    /// The bound on the first number `--eval-cmd` prints: at least it, or with
    /// `lower_is_better` (`metric<=X`) at most it.
    Metric { bound: f64, lower_is_better: bool },
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Cos(c) => write!(f, "cos={c}"),
            Target::Sqnr(db) => write!(f, "sqnr={db}"),
            Target::Metric {
                bound,
                lower_is_better,
            } => write!(
                f,
                "metric{}{bound}",
                if *lower_is_better { "<=" } else { "=" }
            ),
        }
    }
}

fn parse_target(s: &str) -> Result<Target, String> {
    let (kind, value) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: give cos=C, sqnr=DB or metric=X (e.g. cos=0.99)"))?;
    let v: f64 = value
        .parse()
        .map_err(|_| format!("`{value}` is not a number"))?;
    match kind {
        "cos" if (-1.0..=1.0).contains(&v) => Ok(Target::Cos(v)),
        "cos" => Err(format!("cos={v}: a cosine lies in [-1, 1]")),
        "sqnr" if v.is_finite() => Ok(Target::Sqnr(v)),
        "metric" | "metric<" if v.is_finite() => Ok(Target::Metric {
            bound: v,
            lower_is_better: kind == "metric<",
        }),
        _ => Err(format!(
            "`{kind}`: the target is cos=C, sqnr=DB, metric=X (at least X) or metric<=X"
        )),
    }
}

fn parse_share(s: &str) -> Result<f64, String> {
    let (number, scale) = match s.strip_suffix('%') {
        Some(p) => (p, 100.0),
        None => (s, 1.0),
    };
    let v: f64 = number
        .parse()
        .map_err(|_| format!("`{s}`: give a share such as 20% or 0.2"))?;
    let v = v / scale;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("`{s}`: a share lies between 0% and 100%"))
    }
}

fn parse_budget(s: &str) -> Result<f64, String> {
    let (number, unit) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1.0),
        Some((i, 'm')) => (&s[..i], 60.0),
        Some((i, 'h')) => (&s[..i], 3600.0),
        _ => (s, 1.0),
    };
    match number.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v * unit),
        _ => Err(format!("`{s}`: give a time such as 90s, 10m or 1h")),
    }
}

/// What the search prefers among the candidates that meet the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Objective {
    /// The lowest median latency in ONNX Runtime (1 thread, interleaved runs)
    Latency,
    /// The smallest model file
    Size,
}

#[derive(Debug, Clone, Default, Args)]
pub(crate) struct AutoArgs {
    /// Static: search for the fastest model that keeps --target on held-out samples (the last
    /// quarter of --data; calibration reads the rest): whole configurations (activation type,
    /// per-channel weights, which op types, calibration), then SmoothQuant, equalization and
    /// bias correction, then nodes kept float or activations given 16 bits one at a time, each
    /// measured; the report lists every decision. A given --activation-type, --per-channel or
    /// --per-tensor, --method or rewrite is kept in every candidate
    #[arg(long)]
    pub(crate) auto: bool,
    /// --auto: the accuracy to keep, cos=C (lowest output cosine to the float model), sqnr=DB, or
    /// with --eval-cmd metric=X (your metric at least X) or metric<=X (at most X) [default: cos=0.99]
    #[arg(long, value_name = "KIND=VALUE", value_parser = parse_target)]
    pub(crate) target: Option<Target>,
    /// --auto: the largest share of the model's Conv / MatMul / Gemm nodes left float, e.g. 20%
    /// [default: 20%]
    #[arg(long, value_name = "SHARE", value_parser = parse_share)]
    pub(crate) max_float: Option<f64>,
    /// --auto: what is best among the candidates that meet the target [default: latency]
    #[arg(long, value_enum, ignore_case = true)]
    pub(crate) objective: Option<Objective>,
    /// --auto: stop refining node by node after this long (90s, 10m, 1h); every configuration
    /// is still measured, and the report says what was not tried [default: no limit]
    #[arg(long, value_name = "TIME", value_parser = parse_budget)]
    pub(crate) budget: Option<f64>,
    /// --auto: search per-tensor weights only (for a runtime or accelerator without per-channel
    /// kernels); --per-channel keeps it to per-channel weights [default: both are tried]
    #[arg(long, conflicts_with = "per_channel")]
    pub(crate) per_tensor: bool,
    /// --auto with --target metric=X: your metric script judges each candidate, e.g.
    /// "python eval.py {model}" ({model}: the candidate's path), run by the shell; the first
    /// number it prints is the metric
    #[arg(long, value_name = "CMD")]
    pub(crate) eval_cmd: Option<String>,
}
