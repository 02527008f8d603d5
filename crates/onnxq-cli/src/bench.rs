//! `onnxq bench MODEL... --data PATH`: each model's latency in ONNX Runtime with the session
//! settings an application uses, runs interleaved across the models; median, spread and the
//! speed against the first model, as text and as JSON (`onnxq-bench/1`).

use std::io::Write;

use anyhow::Result;
use onnxq_engine::{Latency, Schedule, find_ort_library, ort_version};
use onnxq_ir::load;
use serde::Serialize;

use crate::bench_args::BenchArgs;
use crate::calibrate::open_samples;
use crate::measure::{Timing, first_samples, latencies, speed_word};
use crate::outputs::{Outputs, Plan};
use crate::util::fail;

/// The JSON report.
#[derive(Debug, Serialize)]
struct Report {
    schema: &'static str,
    engine: String,
    threads: usize,
    warmup: usize,
    runs: usize,
    samples: usize,
    models: Vec<Timed>,
}

#[derive(Debug, Serialize)]
struct Timed {
    path: String,
    median_ms: f64,
    p10_ms: f64,
    p90_ms: f64,
    min_ms: f64,
    /// The first model's median over this one's.
    speedup: f64,
}

pub(crate) fn run(a: &BenchArgs) -> Result<()> {
    if a.runs == 0 || a.samples == 0 {
        return Err(fail(
            "--runs and --samples must be at least 1",
            "the defaults are 40 runs on 1 sample",
        ));
    }
    let lib = find_ort_library(a.ort_lib.as_deref())?;
    let mut plan = Plan::default();
    let mut models = Vec::new();
    for p in &a.models {
        let m = load(p)?;
        plan.read_model(p, &m);
        models.push(m);
    }
    plan.read_data(&a.data)?;
    if let Some(p) = &a.json {
        plan.write("JSON report", "--json", p);
    }
    plan.check()?;
    // Every model must take the same samples; the first model's are the ones fed.
    let samples = open_samples(&models[0], &a.data)?;
    for (m, p) in models.iter().zip(&a.models).skip(1) {
        open_samples(m, &a.data)
            .map_err(|e| anyhow::anyhow!("`{}` does not take these samples: {e:#}", p.display()))?;
    }
    let fed = first_samples(&samples, a.samples)?;
    drop(models);
    let timing = Timing {
        threads: a.threads,
        schedule: Schedule {
            warmup: a.warmup,
            runs: a.runs,
        },
    };
    let lat = latencies(&lib, &a.models, &fed, timing)?;
    let report = Report {
        schema: "onnxq-bench/1",
        engine: format!("onnxruntime {}", ort_version(&lib)),
        threads: a.threads,
        warmup: a.warmup,
        runs: a.runs,
        samples: fed.len(),
        models: a
            .models
            .iter()
            .zip(&lat)
            .map(|(p, l)| Timed {
                path: p.display().to_string(),
                median_ms: l.median_ms,
                p10_ms: l.p10_ms,
                p90_ms: l.p90_ms,
                min_ms: l.min_ms,
                speedup: lat[0].median_ms / l.median_ms,
            })
            .collect(),
    };
    if let Some(p) = &a.json {
        let mut out = Outputs::default();
        out.file(
            "JSON report",
            p,
            (serde_json::to_string_pretty(&report)? + "\n").as_bytes(),
        )?;
        out.commit()?;
    }
    print_table(&report, &lat)
}

fn print_table(r: &Report, lat: &[Latency]) -> Result<()> {
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "{}, {} intra-op thread(s), {} interleaved runs per model after {} warm-up, {} sample(s)",
        r.engine, r.threads, r.runs, r.warmup, r.samples
    )?;
    let width = r
        .models
        .iter()
        .map(|m| m.path.len())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(
        o,
        "{:<width$}  {:>10}  {:>19}  {:>9}  vs first",
        "model", "median", "p10-p90", "min"
    )?;
    for (m, l) in r.models.iter().zip(lat) {
        writeln!(
            o,
            "{:<width$}  {:>7.3} ms  {:>7.3}-{:<8.3} ms  {:>6.3} ms  {}",
            m.path,
            m.median_ms,
            m.p10_ms,
            m.p90_ms,
            m.min_ms,
            speed_word(&lat[0], l)
        )?;
    }
    Ok(())
}
