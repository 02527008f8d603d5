//! What a quantized model buys, measured: its latency in ONNX Runtime beside other models'
//! (deployment session settings, interleaved runs, `onnxq-engine`'s `latency`), and its
//! outputs' agreement with the float model on samples (`onnxq-debug`'s comparison loop, outputs
//! only). Shared by `onnxq bench`, `quantize --measure` and the measured exclusions of `compare`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use onnxq_calib::data::{Sample, Samples};
use onnxq_debug::activations::{Plan, measure};
use onnxq_engine::{Executor, Latency, Schedule, TimedSession, interleaved};
use onnxq_ir::Model;

use crate::engine::Backend;
use crate::util::{HintExt, Progress};

/// How latency is measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// Intra-op threads of every session.
    pub(crate) threads: usize,
    /// Warm-up and timed runs per model.
    pub(crate) schedule: Schedule,
}

/// The first `n` samples, read into memory (latency runs feed them many times).
pub(crate) fn first_samples(samples: &Samples, n: usize) -> Result<Vec<Sample>> {
    let mut out = Vec::new();
    samples
        .each(|i, s| -> Result<(), String> {
            if i < n {
                out.push(s);
            }
            Ok(())
        })
        .map_err(|e| anyhow::anyhow!(e))?;
    Ok(out)
}

/// Each model file's latency, measured in interleaved runs on `samples`.
pub(crate) fn latencies(
    lib: &Path,
    models: &[PathBuf],
    samples: &[Sample],
    t: Timing,
) -> Result<Vec<Latency>> {
    let mut sessions = Vec::with_capacity(models.len());
    for m in models {
        let s = TimedSession::load(lib, m, t.threads, samples)
            .hint("check that the model runs in ONNX Runtime as it is")?;
        sessions.push(s);
    }
    let rounds = t.schedule.warmup + t.schedule.runs;
    let bar = Progress::new("timing", rounds, "rounds");
    let times = interleaved(&mut sessions, t.schedule, |r| bar.set(r))?;
    drop(bar);
    Ok(times
        .iter()
        .map(|ts| Latency::of(ts).expect("every model ran `runs` > 0 times"))
        .collect())
}

/// How closely a model's outputs follow the float model's: the lowest SQNR and cosine over the
/// outputs both have, and the first class-like output's top-1 agreement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Agreement {
    pub(crate) sqnr_db: f64,
    pub(crate) cosine: f64,
    pub(crate) top1: Option<f64>,
}

/// The outputs both models have, in the float model's order.
pub(crate) fn shared_outputs(float: &Model, quant: &Model) -> Vec<String> {
    let names = |m: &Model| -> Vec<String> {
        m.graph
            .outputs()
            .iter()
            .map(|p| m.graph.value(p.value).name().to_owned())
            .collect()
    };
    let q = names(quant);
    names(float).into_iter().filter(|n| q.contains(n)).collect()
}

/// `model`'s agreement with the float model (loaded as `float`) on `samples`.
pub(crate) fn agreement(
    model: &Model,
    float: &mut dyn Executor,
    backend: &Backend,
    samples: &Samples,
    outputs: &[String],
    threads: usize,
) -> Result<Agreement> {
    let mut engine = backend.load(model, threads)?;
    let plan = Plan {
        items: Vec::new(),
        outputs: outputs.to_vec(),
    };
    let m = measure(&plan, float, &mut *engine, samples, |_| {})?;
    let low = |f: &dyn Fn(&onnxq_debug::stats::Sums) -> f64| {
        m.outputs
            .iter()
            .map(|(s, _)| f(s))
            .fold(f64::INFINITY, f64::min)
    };
    Ok(Agreement {
        sqnr_db: low(&|s| s.sqnr_db()),
        cosine: low(&|s| s.cosine()),
        top1: m.outputs.iter().find_map(|(_, t)| t.agreement()),
    })
}

/// "1.42× faster" / "2.10× slower" / "as fast" for `new` against `base` (medians).
pub(crate) fn speed_word(base: &Latency, new: &Latency) -> String {
    let r = base.median_ms / new.median_ms;
    if (r - 1.0).abs() < 0.02 {
        "as fast".into()
    } else if r > 1.0 {
        format!("{r:.2}× faster")
    } else {
        format!("{:.2}× slower", 1.0 / r)
    }
}
