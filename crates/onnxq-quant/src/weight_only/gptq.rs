//! The GPTQ arm of weight-only quantization's middle stage: the Hessians of the planned MatMuls'
//! inputs come from a [`HessianSource`] (the CLI's runs the float model on calibration data through
//! `onnxq-calib`), a pass over the data at a time, each pass collecting only as many Hessians as the
//! memory budget holds. Each Hessian is prepared once (`numerics::gptq::prepare`) and solves every
//! weight reading that input; a weight read by several inputs solves against the sum of their
//! Hessians (its error on every use counts). Hessians are dropped once their weights are solved.

use std::collections::{BTreeMap, BTreeSet};

use onnxq_ir::{Def, Graph, Sources, Spill};

use super::encode::encode;
use super::options::WeightOnlyOptions;
use super::plan::{Key, Kind, Plan};
use super::quantize::{Pending, Skip, quantize_one, with_elems};
use crate::error::{Error, Result};
use crate::numerics::gptq::{GptqSettings, prepare};
use crate::weights::resolve;

/// One Hessian wanted: a MatMul input tensor of the main graph and its last dimension K.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HessianRequest {
    /// The tensor (a graph input or a node output of the main graph).
    pub tensor: String,
    /// Its last dimension, the MatMul's K.
    pub k: usize,
}

/// A collected Hessian: `2/rows · Σ xᵀx` over every row `x` of the tensor reshaped to `[-1, K]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HessianData {
    /// `[K, K]` row-major, symmetric.
    pub values: Vec<f64>,
    /// Rows seen over all samples.
    pub rows: u64,
}

/// Where GPTQ's Hessians come from.
pub trait HessianSource {
    /// The Hessians of `tensors`, in order, from one pass over the calibration data; `pass` is
    /// this pass's number (1-based) and `passes` how many the run takes, for progress.
    fn collect(
        &mut self,
        tensors: &[HessianRequest],
        pass: usize,
        passes: usize,
    ) -> Result<Vec<HessianData>>;

    /// What the Hessians were computed on, for the report ("32 samples with onnxruntime 1.31.1").
    fn describe(&self) -> String;
}

/// Why a MatMul cannot be quantized with GPTQ, or `Ok` when its input A can be calibrated.
pub(crate) fn check_input(g: &Graph, outer: &[&Graph], p: &Plan) -> Result<(), String> {
    if !outer.is_empty() {
        return Err(
            "GPTQ needs input A's values on calibration data, and a subgraph body's \
                    values cannot be read from outside; quantize it with another --algo or \
                    leave it float"
                .into(),
        );
    }
    match g.value(p.other).def() {
        Def::Input | Def::Node { .. } => Ok(()),
        _ => Err(
            "input A is a constant: GPTQ needs activations to weigh the error; quantize it \
                  with another --algo"
                .into(),
        ),
    }
}

/// Bytes of one float64 Hessian of a `K`-wide input.
fn hessian_bytes(k: usize) -> u64 {
    8 * (k as u64) * (k as u64)
}

/// Counts of one GPTQ run, for the report.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) hessians: usize,
    pub(crate) passes: usize,
    /// Highest damping used, as a fraction of `mean(diag H)`, when above the setting.
    pub(crate) raised_damping: Option<f64>,
}

/// A group of weights solved against the same input Hessian(s).
struct Job {
    inputs: Vec<HessianRequest>,
    weights: Vec<Key>,
    /// The nodes reading these weights, for messages.
    nodes: Vec<String>,
}

/// Quantizes every planned weight of the main graph `g` with GPTQ.
pub(crate) fn quantize_weights(
    g: &Graph,
    plans: &[Plan],
    opts: &WeightOnlyOptions,
    sources: &Sources,
    (source, stats): (&mut dyn HessianSource, &mut Stats),
    spill: Option<&Spill>,
) -> Result<Pending> {
    let jobs = jobs(g, plans);
    let passes = passes(&jobs, opts.gptq.memory)?;
    let distinct: BTreeMap<Key, &Plan> = plans.iter().map(|p| (p.key(), p)).collect();
    let settings = GptqSettings {
        percdamp: opts.gptq.percdamp,
        act_order: opts.gptq.act_order,
    };
    let mut results = Pending::new();
    for (n, pass) in passes.iter().enumerate() {
        let wanted: BTreeSet<HessianRequest> = pass
            .iter()
            .flat_map(|&j| jobs[j].inputs.iter().cloned())
            .collect();
        let wanted: Vec<HessianRequest> = wanted.into_iter().collect();
        let collected = source.collect(&wanted, n + 1, passes.len())?;
        if collected.len() != wanted.len() {
            return Err(Error::Internal(
                "the Hessian source returned too few".into(),
            ));
        }
        stats.passes += 1;
        stats.hessians += wanted.len();
        let mut by_name: BTreeMap<&str, HessianData> = wanted
            .iter()
            .map(|r| r.tensor.as_str())
            .zip(collected)
            .collect();
        // The last job of the pass reading each input takes its Hessian rather than a copy.
        let last: BTreeMap<&str, usize> = pass
            .iter()
            .flat_map(|&j| jobs[j].inputs.iter().map(move |r| (r.tensor.as_str(), j)))
            .collect();
        for &j in pass {
            let job = &jobs[j];
            let h = sum_of(job, |t| last.get(t) == Some(&j), &mut by_name)?;
            let what = || {
                format!(
                    "the Hessian of `{}` (read by {})",
                    job.inputs
                        .iter()
                        .map(|r| r.tensor.as_str())
                        .collect::<Vec<_>>()
                        .join("` + `"),
                    job.nodes.join(", ")
                )
            };
            let Some(h) = h else {
                for key in &job.weights {
                    results.insert(
                        *key,
                        Err(Skip {
                            reason: format!(
                                "{}: the calibration data gave its input no rows",
                                what()
                            ),
                            warn: true,
                        }),
                    );
                }
                continue;
            };
            let k = job.inputs[0].k;
            let prepared = prepare(h.values, k, settings).map_err(|reason| Error::Options {
                message: format!("GPTQ cannot factor {}: {reason}", what()),
                hint: "raise the damping (--percdamp 0.1), give more or other calibration data, \
                       or --exclude the node",
            })?;
            if prepared.percdamp_used > settings.percdamp {
                let r = stats.raised_damping.get_or_insert(0.0);
                *r = r.max(prepared.percdamp_used);
            }
            for key in &job.weights {
                let p = distinct[key];
                let c = resolve(g, &[], p.weight_input)
                    .ok_or_else(|| Error::Internal("planned weight is not constant".into()))?;
                let q = with_elems(c.tensor, |w| {
                    quantize_one(w, p, opts, &|_| {}, Some(&prepared))
                })?;
                if let Some(raw) = &c.tensor.raw_data {
                    sources.release(raw);
                }
                let e = match q {
                    Ok(q) => Ok(encode(p, q, spill)?),
                    Err(skip) => Err(skip),
                };
                results.insert(*key, e);
            }
        }
    }
    Ok(results)
}

/// The distinct weights grouped by the set of inputs reading them, in graph order.
fn jobs(g: &Graph, plans: &[Plan]) -> Vec<Job> {
    let mut inputs: BTreeMap<Key, BTreeSet<HessianRequest>> = BTreeMap::new();
    let mut nodes: BTreeMap<Key, Vec<String>> = BTreeMap::new();
    let mut order: Vec<Key> = Vec::new();
    for p in plans {
        let Kind::MatMul { k, .. } = p.kind else {
            continue;
        };
        let key = p.key();
        if !inputs.contains_key(&key) {
            order.push(key);
        }
        inputs.entry(key).or_default().insert(HessianRequest {
            tensor: g.value(p.other).name().to_owned(),
            k,
        });
        let label = g.node(p.node).map_or_else(String::new, |n| {
            format!("`{}`", crate::edit::node_label(g, n))
        });
        nodes.entry(key).or_default().push(label);
    }
    let mut jobs: Vec<Job> = Vec::new();
    let mut index: BTreeMap<Vec<HessianRequest>, usize> = BTreeMap::new();
    for key in order {
        let set: Vec<HessianRequest> = inputs[&key].iter().cloned().collect();
        let j = *index.entry(set.clone()).or_insert_with(|| {
            jobs.push(Job {
                inputs: set,
                weights: Vec::new(),
                nodes: Vec::new(),
            });
            jobs.len() - 1
        });
        jobs[j].weights.push(key);
        jobs[j].nodes.extend(nodes[&key].iter().cloned());
    }
    jobs
}

/// Jobs per pass over the data, in order, each pass's distinct Hessians within `budget` bytes.
fn passes(jobs: &[Job], budget: u64) -> Result<Vec<Vec<usize>>> {
    let mut passes: Vec<Vec<usize>> = Vec::new();
    let mut held: BTreeSet<&str> = BTreeSet::new();
    let mut used = 0u64;
    for (j, job) in jobs.iter().enumerate() {
        let alone: u64 = job.inputs.iter().map(|r| hessian_bytes(r.k)).sum();
        if alone > budget {
            return Err(Error::Options {
                message: format!(
                    "GPTQ needs {} MiB for the Hessian of `{}` (K = {}), over the memory budget \
                     of {} MiB",
                    alone >> 20,
                    job.inputs[0].tensor,
                    job.inputs[0].k,
                    budget >> 20
                ),
                hint: "raise --gptq-memory (e.g. --gptq-memory 4GiB), or --exclude that MatMul",
            });
        }
        let extra: u64 = job
            .inputs
            .iter()
            .filter(|r| !held.contains(r.tensor.as_str()))
            .map(|r| hessian_bytes(r.k))
            .sum();
        if passes.is_empty() || used + extra > budget {
            passes.push(Vec::new());
            held.clear();
            used = alone;
        } else {
            used += extra;
        }
        held.extend(job.inputs.iter().map(|r| r.tensor.as_str()));
        if let Some(last) = passes.last_mut() {
            last.push(j);
        }
    }
    Ok(passes)
}

/// The job's Hessian: its input's, or the sum of its inputs' (each a mean over its own rows).
/// `None` when no input saw a row. An input a later job of the pass reads too (`last` false) is
/// copied, else taken.
fn sum_of(
    job: &Job,
    last: impl Fn(&str) -> bool,
    by_name: &mut BTreeMap<&str, HessianData>,
) -> Result<Option<HessianData>> {
    let mut total: Option<HessianData> = None;
    for r in &job.inputs {
        let name = r.tensor.as_str();
        let h = if last(name) {
            by_name.remove(name)
        } else {
            by_name.get(name).cloned()
        }
        .ok_or_else(|| Error::Internal(format!("no Hessian of `{}`", r.tensor)))?;
        if h.values.len() != r.k * r.k {
            return Err(Error::Internal(format!(
                "the Hessian of `{}` has {} values for K = {}",
                r.tensor,
                h.values.len(),
                r.k
            )));
        }
        if h.rows == 0 {
            continue;
        }
        match &mut total {
            None => total = Some(h),
            Some(t) => {
                for (a, b) in t.values.iter_mut().zip(&h.values) {
                    *a += b;
                }
                t.rows += h.rows;
            }
        }
    }
    Ok(total)
}
