//! How `--auto` judges a candidate: its outputs against the float model's on the held-out
//! samples (the comparison loop of `measure.rs`), its share of Conv / MatMul / Gemm left float,
//! its size, and its latency in ONNX Runtime against the float model's (interleaved runs).

use std::path::{Path, PathBuf};

use anyhow::Result;
use onnxq_calib::data::{Sample, Samples};
use onnxq_engine::{Executor, Schedule};
use onnxq_ir::{Def, Layout, Model};
use onnxq_quant::Report;

use crate::engine::Backend;
use crate::measure::{Agreement, Timing, agreement, first_samples, latencies, shared_outputs};

/// Samples cycled through by the timed runs.
const TIMED_SAMPLES: usize = 8;
/// Candidates loaded into ONNX Runtime at once (each batch interleaved with the float model):
/// a refinement times ~100 candidates, and holding all their sessions costs gigabytes.
const TIMED_TOGETHER: usize = 8;
/// One intra-op thread: the ratio of two models is what is compared, free of scheduling noise.
const TIMING: Timing = Timing {
    threads: 1,
    schedule: Schedule {
        warmup: 3,
        runs: 20,
    },
};

/// The ops whose share left float `--max-float` bounds.
pub(super) const COMPUTE_OPS: [&str; 3] = ["Conv", "MatMul", "Gemm"];

/// The float model, loaded once, and the held-out samples.
pub(super) struct Judge {
    backend: Backend,
    float_exec: Box<dyn Executor>,
    held: Samples,
    timed: Vec<Sample>,
    outputs: Vec<String>,
    threads: usize,
    lib: PathBuf,
    dir: tempfile::TempDir,
    float_path: PathBuf,
    compute_nodes: usize,
    /// The user's metric command (`--eval-cmd`), `{model}` standing for the candidate's path.
    pub(super) eval_cmd: Option<String>,
    /// Candidates written so far.
    kept: usize,
}

impl Judge {
    pub(super) fn new(
        float: &Model,
        held: Samples,
        backend: Backend,
        lib: PathBuf,
        threads: usize,
    ) -> Result<Judge> {
        let float_exec = backend.load(float, threads)?;
        let dir = tempfile::tempdir()?;
        let float_path = dir.path().join("float.onnx");
        save(float, &float_path)?;
        let compute_nodes = float
            .graph
            .nodes()
            .filter(|(_, n)| COMPUTE_OPS.contains(&n.op_type()))
            .count();
        Ok(Judge {
            timed: first_samples(&held, TIMED_SAMPLES)?,
            backend,
            float_exec,
            held,
            outputs: shared_outputs(float, float),
            threads,
            lib,
            dir,
            float_path,
            compute_nodes,
            eval_cmd: None,
            kept: 0,
        })
    }

    /// The candidate's outputs against the float model's on the held-out samples.
    pub(super) fn accuracy(&mut self, m: &Model) -> Result<Agreement> {
        agreement(
            m,
            &mut *self.float_exec,
            &self.backend,
            &self.held,
            &self.outputs,
            self.threads,
        )
    }

    /// The share of the float model's Conv / MatMul / Gemm nodes that `report` did not quantize.
    pub(super) fn float_share(&self, report: &Report) -> f64 {
        if self.compute_nodes == 0 {
            return 0.0;
        }
        let quantized = report
            .quantized_nodes()
            .filter(|e| COMPUTE_OPS.contains(&e.op_type.as_str()))
            .count();
        1.0 - quantized.min(self.compute_nodes) as f64 / self.compute_nodes as f64
    }

    /// Writes candidate `m` to the search's folder, so the search holds no candidate in memory.
    pub(super) fn keep(&mut self, m: &Model) -> Result<Saved> {
        let path = self
            .dir
            .path()
            .join(format!("candidate-{}.onnx", self.kept));
        self.kept += 1;
        let bytes = save(m, &path)?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&node_pattern(m), &mut h);
        Ok(Saved {
            path,
            bytes,
            pattern: std::hash::Hasher::finish(&h),
        })
    }

    /// Each saved model's size in bytes and its speed-up over the float model (the float median
    /// over its median), timed `TIMED_TOGETHER` at a time with the float model. Models with the
    /// same nodes (candidates that differ only in ranges or biases) run the same kernels, so only
    /// the first is timed.
    pub(super) fn speed(&self, models: &[&Saved]) -> Result<Vec<(u64, f64)>> {
        let mut paths = Vec::new();
        let mut patterns: Vec<u64> = Vec::new();
        let mut timed_as = Vec::new();
        for m in models {
            match patterns.iter().position(|k| *k == m.pattern) {
                Some(j) => timed_as.push(j),
                None => {
                    timed_as.push(patterns.len());
                    patterns.push(m.pattern);
                    paths.push(m.path.clone());
                }
            }
        }
        // Each batch is timed with the float model in the same interleaved call, so every
        // speed-up is a ratio of runs made under the same machine load.
        let mut speedup = Vec::with_capacity(paths.len());
        for batch in paths.chunks(TIMED_TOGETHER) {
            let mut with_float = vec![self.float_path.clone()];
            with_float.extend_from_slice(batch);
            let lat = latencies(&self.lib, &with_float, &self.timed, TIMING)?;
            speedup.extend(lat[1..].iter().map(|l| lat[0].median_ms / l.median_ms));
        }
        Ok(models
            .iter()
            .zip(timed_as)
            .map(|(m, j)| (m.bytes, speedup[j]))
            .collect())
    }
}

/// A candidate written to the search's folder.
#[derive(Clone)]
pub(super) struct Saved {
    pub(super) path: PathBuf,
    pub(super) bytes: u64,
    /// A hash of its nodes and their wiring (`node_pattern`).
    pattern: u64,
}

impl Saved {
    /// The candidate, read back (its tensors mapped from the file).
    pub(super) fn load(&self) -> Result<Model> {
        Ok(onnxq_ir::load(&self.path)?)
    }
}

/// The model's nodes as op types and their inputs' and outputs' names, in order, with the element
/// type of every constant input: a zero point's type is the Q/DQ pair's, so int8 and uint8
/// activations (ONNX Runtime's S8S8 and U8S8 kernels, far apart in speed) and 16-bit overrides
/// are different patterns, timed apart.
fn node_pattern(m: &Model) -> String {
    let g = &m.graph;
    let mut key = String::new();
    for (_, n) in g.nodes() {
        key.push_str(n.op_type());
        key.push('(');
        for v in n.inputs().iter().chain(n.outputs()) {
            if let Some(v) = v {
                key.push_str(g.value(*v).name());
                if let Def::Initializer(t) = g.value(*v).def() {
                    key.push_str(&format!(":{}", t.data_type.unwrap_or(0)));
                }
            }
            key.push(',');
        }
        key.push(')');
    }
    key
}

impl Judge {
    /// The first number `--eval-cmd` prints for the saved candidate `m`, when it is given. The
    /// command runs in the shell with `{model}` replaced by the quoted path of `m`.
    pub(super) fn metric(&self, m: &Saved) -> Result<Option<f64>> {
        let Some(cmd) = &self.eval_cmd else {
            return Ok(None);
        };
        let path = &m.path;
        let quoted = format!("'{}'", path.display().to_string().replace('\'', r"'\''"));
        let line = cmd.replace("{model}", &quoted);
        let out = std::process::Command::new("sh")
            .args(["-c", &line])
            .output()
            .map_err(|e| anyhow::anyhow!("--eval-cmd: cannot start `sh -c {line}`: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(crate::util::fail(
                format!(
                    "--eval-cmd `{cmd}` failed ({}) on a candidate:\n{}{}",
                    out.status,
                    stdout,
                    String::from_utf8_lossy(&out.stderr)
                ),
                "run the command by hand on a quantized model; it must exit 0 and print the metric",
            ));
        }
        match first_number(&stdout) {
            Some(v) => Ok(Some(v)),
            None => Err(crate::util::fail(
                format!("--eval-cmd `{cmd}` printed no number: {}", stdout.trim()),
                "make the script print the metric first, e.g. `acc=0.91`",
            )),
        }
    }

    /// Up to `n` nodes of `quant` where its error starts or is worst on the held-out samples
    /// (the comparison's ranking: activation drops and weight SQNR, interleaved), and the
    /// quantized activations by their drop, largest first.
    pub(super) fn rank(&mut self, float: &Model, quant: &Model, n: usize) -> Result<Ranked> {
        let prepared = onnxq_debug::prepare(float, quant).map_err(crate::compare::debug_error)?;
        let mut fe = self.backend.load(&prepared.float_augmented, self.threads)?;
        let mut qe = self.backend.load(&prepared.quant_augmented, self.threads)?;
        let (report, _) = onnxq_debug::compare(
            &prepared,
            &mut *fe,
            &mut *qe,
            &self.held,
            onnxq_debug::Options::default(),
            |_| {},
        )
        .map_err(crate::compare::debug_error)?;
        let mut drops: Vec<_> = report
            .activations
            .iter()
            .filter(|a| a.quant_tensor.is_some())
            .filter_map(|a| a.drop_db.map(|d| (d, a.index, a.name.clone())))
            .collect();
        drops.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
        Ok(Ranked {
            nodes: onnxq_debug::rank::candidates(&report.activations, &report.weights, n)
                .into_iter()
                .map(|(node, _)| node)
                .collect(),
            activations: drops.into_iter().take(n).map(|(_, _, name)| name).collect(),
        })
    }
}

/// Where a candidate's error is, most promising first.
pub(super) struct Ranked {
    /// Nodes worth keeping float.
    pub(super) nodes: Vec<String>,
    /// Quantized activations worth 16 bits.
    pub(super) activations: Vec<String>,
}

/// Writes `m` to `path` (inline below 2 GB, else with its data beside it); returns its bytes.
fn save(m: &Model, path: &Path) -> Result<u64> {
    let layout = if m.external_files().is_empty() {
        Layout::Inline
    } else {
        Layout::External {
            location: format!(
                "{}.data",
                path.file_name().unwrap_or_default().to_string_lossy()
            ),
            threshold: onnxq_ir::DEFAULT_THRESHOLD,
        }
    };
    let saved = onnxq_ir::save(m, path, &layout)?;
    Ok(saved.model_bytes + saved.data_bytes)
}

/// The first number in `text` that does not continue a word ("top1_agree=0.70" gives 0.70).
fn first_number(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let starts = b[i].is_ascii_digit()
            || (matches!(b[i], b'-' | b'+' | b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit));
        let after_word = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if starts && !after_word {
            let end = (i + 1..=b.len()).rev().find(|&e| {
                text.get(i..e)
                    .and_then(|t| t.parse::<f64>().ok())
                    .is_some_and(f64::is_finite)
            })?;
            return text.get(i..end)?.parse().ok();
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::first_number;

    #[test]
    fn the_first_number_is_read_past_words() {
        assert_eq!(first_number("top1_agree=0.7000 kl=0.1"), Some(0.7));
        assert_eq!(first_number("bpb=2.6778\n"), Some(2.6778));
        assert_eq!(first_number("loss -1.5e-2 at step 3"), Some(-0.015));
        assert_eq!(first_number("v2 model: 91.5%"), Some(91.5));
        assert_eq!(first_number("no figure"), None);
        assert_eq!(first_number("précision ≈ 0.5"), Some(0.5));
    }
}
