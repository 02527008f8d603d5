//! Segmented runs: a model whose weights an engine should not hold all at once is run as
//! consecutive slices ("segments") of its main graph's nodes in topological order, each loaded
//! alone with only the initializers its nodes read. The values crossing a cut (the residual stream
//! of a transformer) are carried from one segment to the next per sample, in memory: one cut's
//! activations for every sample, not the model's weights. An engine computes each node from the
//! same inputs either way, so the values seen are the whole model's.
//!
//! Cuts are planned once ([`Segments::plan`]): after about `weights` bytes of initializers, at the
//! first boundary where few values are live. A cut whose values an engine cannot hand back (a
//! float16 or sequence value) is skipped when the segment is built, so the segment runs on to the
//! next cut. [`Sweep`] runs the segments in order and resumes where it stopped, so the passes of a
//! caller that asks for values in graph order cost one run of the model in all.

use std::collections::{BTreeMap, BTreeSet};

use onnxq_engine::{DataRef, Executor, Tensor};
use onnxq_ir::proto as pb;
use onnxq_ir::{Def, Model, Use};

use crate::Error;
use crate::data::{Sample, Samples};

/// Element types whose values an engine hands back (see [`DataRef`]), so a cut may carry them.
const CARRIED_TYPES: [i32; 7] = [1, 2, 3, 6, 7, 9, 11];

/// A model's main graph, planned into segments.
pub struct Segments {
    model: Model,
    /// The main graph, nodes in topological order.
    graph: pb::GraphProto,
    /// Per node: the values it reads (graph inputs and node outputs, subgraph reads included).
    reads: Vec<Vec<String>>,
    /// Per node: the initializers it reads.
    constants: Vec<Vec<String>>,
    /// Node outputs: the node producing each.
    producer: BTreeMap<String, usize>,
    /// Graph inputs and node outputs: the last node reading each.
    last_read: BTreeMap<String, usize>,
    /// The graph inputs fed at run time, as declared.
    inputs: BTreeMap<String, pb::ValueInfoProto>,
    /// Planned cuts: node positions where a new segment starts, ascending, in `1..nodes`.
    cuts: Vec<usize>,
    /// The weights per segment aimed at.
    weights: u64,
}

impl Segments {
    /// Plans the main graph of `model` into segments of about `weights` bytes of initializers
    /// each; `weights == 0` keeps the whole model in one segment.
    pub fn plan(model: &Model, weights: u64) -> Result<Segments, Error> {
        let g = &model.graph;
        let order = g.topological_order()?;
        let position: BTreeMap<_, _> = order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
        let n = order.len();
        let mut reads = vec![Vec::new(); n];
        let mut constants = vec![Vec::new(); n];
        let mut producer = BTreeMap::new();
        let mut last_read = BTreeMap::new();
        let mut weight = vec![0u64; n];
        for (_, v) in g.values() {
            let readers: BTreeSet<usize> = v
                .uses()
                .iter()
                .filter_map(|u| match *u {
                    Use::Node { node, .. } | Use::Subgraph { node } => position.get(&node).copied(),
                    Use::Output(_) => None,
                })
                .collect();
            let name = v.name().to_owned();
            match v.def() {
                Def::Initializer(t) => {
                    for &r in &readers {
                        constants[r].push(name.clone());
                    }
                    if let Some(&first) = readers.first() {
                        weight[first] += tensor_bytes(t);
                    }
                }
                Def::SparseInitializer(_) => {
                    for &r in &readers {
                        constants[r].push(name.clone());
                    }
                }
                Def::Input | Def::Node { .. } => {
                    if let Def::Node { node, .. } = v.def()
                        && let Some(&p) = position.get(node)
                    {
                        producer.insert(name.clone(), p);
                    }
                    for &r in &readers {
                        reads[r].push(name.clone());
                    }
                    if let Some(&last) = readers.last() {
                        last_read.insert(name, last);
                    }
                }
                Def::Outer | Def::Declared => {}
            }
        }
        let inputs = g
            .inputs()
            .iter()
            .filter(|p| matches!(g.value(p.value).def(), Def::Input))
            .map(|p| {
                let name = g.value(p.value).name().to_owned();
                let info = pb::ValueInfoProto {
                    name: Some(name.clone()),
                    ..p.info.clone()
                };
                (name, info)
            })
            .collect();
        let cuts = plan_cuts(&weight, &producer, &last_read, weights);
        let mut proto = model.to_proto()?;
        let graph = proto
            .graph
            .take()
            .ok_or_else(|| Error::Data("the model has no graph".into()))?;
        Ok(Segments {
            model: model.clone(),
            graph,
            reads,
            constants,
            producer,
            last_read,
            inputs,
            cuts,
            weights,
        })
    }

    /// How many segments the plan has (cuts the engine cannot carry may merge some).
    pub fn planned(&self) -> usize {
        self.cuts.len() + 1
    }

    fn nodes(&self) -> usize {
        self.graph.node.len()
    }

    /// The model of nodes `a..b` with `outputs` as its outputs; its inputs are the values those
    /// nodes read from before `a` (typed from `types`) and the graph inputs they read.
    fn model_of(
        &self,
        (a, b): (usize, usize),
        outputs: &[String],
        types: &BTreeMap<String, pb::ValueInfoProto>,
    ) -> Result<(Model, Vec<String>), Error> {
        let mut fed: BTreeSet<&str> = BTreeSet::new();
        let mut consts: BTreeSet<&str> = BTreeSet::new();
        for i in a..b {
            for r in &self.reads[i] {
                let before = self.producer.get(r).is_none_or(|&p| p < a);
                if before {
                    fed.insert(r);
                }
            }
            consts.extend(self.constants[i].iter().map(String::as_str));
        }
        let mut input = Vec::new();
        for &name in &fed {
            let info = self
                .inputs
                .get(name)
                .or_else(|| types.get(name))
                .ok_or_else(|| {
                    Error::Data(format!(
                        "segment run: no type known for `{name}`, read across a cut"
                    ))
                })?;
            input.push(info.clone());
        }
        let g = &self.graph;
        let graph = pb::GraphProto {
            name: g.name.clone(),
            node: g.node[a..b].to_vec(),
            initializer: (g.initializer.iter())
                .filter(|t| consts.contains(t.name()))
                .cloned()
                .collect(),
            sparse_initializer: (g.sparse_initializer.iter())
                .filter(|t| {
                    let name = t.values.as_ref().map_or("", |v| v.name());
                    consts.contains(name)
                })
                .cloned()
                .collect(),
            input,
            output: outputs
                .iter()
                .map(|o| pb::ValueInfoProto {
                    name: Some(o.clone()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let fed = fed.into_iter().map(str::to_owned).collect();
        Ok((self.model.with_graph(graph)?, fed))
    }
}

/// Bytes a tensor's values take.
fn tensor_bytes(t: &pb::TensorProto) -> u64 {
    let words = t.float_data.len() + t.int32_data.len();
    let dwords = t.int64_data.len() + t.double_data.len() + t.uint64_data.len();
    (t.raw_data.as_ref().map_or(0, |r| r.len()) + 4 * words + 8 * dwords) as u64
}

/// Cut positions: once a segment holds `weights` bytes, the first boundary with at most one value
/// more live than the graph's quietest boundary (between the layers of a stack).
fn plan_cuts(
    weight: &[u64],
    producer: &BTreeMap<String, usize>,
    last_read: &BTreeMap<String, usize>,
    weights: u64,
) -> Vec<usize> {
    let n = weight.len();
    if weights == 0 || n < 2 {
        return Vec::new();
    }
    // live[i]: node outputs produced before node i and read at or after it.
    let mut delta = vec![0i64; n + 1];
    for (name, &p) in producer {
        if let Some(&r) = last_read.get(name)
            && r > p
        {
            delta[p + 1] += 1;
            delta[r + 1] -= 1;
        }
    }
    let mut live = vec![0i64; n];
    let mut run = 0;
    for i in 0..n {
        run += delta[i];
        live[i] = run;
    }
    let quietest = live[1..].iter().copied().min().unwrap_or(0);
    let mut cuts = Vec::new();
    let mut held = 0u64;
    for i in 0..n {
        if i > 0 && held >= weights && live[i] <= quietest + 1 {
            cuts.push(i);
            held = 0;
        }
        held += weight[i];
    }
    cuts
}

/// A run of the segments over calibration samples, resumable.
pub struct Sweep {
    segments: Segments,
    /// The next node to run.
    pos: usize,
    /// Per sample: the values read at or after `pos` that were produced before it.
    carried: Vec<Sample>,
    /// Where the last segment run started, and what was carried into it: a pass that ends
    /// inside a segment leaves the next pass values of that segment, which it runs again.
    last: (usize, Vec<Sample>),
    /// Element types of the values produced so far, as the engine resolved them.
    types: BTreeMap<String, pb::ValueInfoProto>,
    /// Segments run so far, for the report.
    runs: usize,
}

/// Loads a model into an engine.
pub type Loader<'a> = dyn FnMut(&Model) -> Result<Box<dyn Executor>, Error> + 'a;

/// What a sweep shows its caller: sample index, value name, dims, data.
pub type Visit<'a> = dyn FnMut(usize, &str, &[usize], DataRef<'_>) -> Result<(), Error> + 'a;

impl Sweep {
    /// A sweep that starts at the first node.
    pub fn new(segments: Segments) -> Sweep {
        Sweep {
            segments,
            pos: 0,
            carried: Vec::new(),
            last: (0, Vec::new()),
            types: BTreeMap::new(),
            runs: 0,
        }
    }

    /// Segments run so far.
    pub fn runs(&self) -> usize {
        self.runs
    }

    /// Segments planned.
    pub fn planned(&self) -> usize {
        self.segments.planned()
    }

    /// The weights per segment the plan aimed at.
    pub fn segment_weights(&self) -> u64 {
        self.segments.weights
    }

    /// Runs every sample through the segments up to the one producing the last of `wanted`
    /// (node outputs of the main graph), showing each wanted value to `visit`; resumes where the
    /// last call stopped, or starts again from the first node when a wanted value comes earlier.
    /// `progress(segment, samples done)` follows the runs.
    pub fn run_until(
        &mut self,
        wanted: &BTreeSet<String>,
        samples: &Samples,
        load: &mut Loader<'_>,
        visit: &mut Visit<'_>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(), Error> {
        let (mut start, mut end) = (usize::MAX, 0);
        for w in wanted {
            let p = *self.segments.producer.get(w).ok_or_else(|| {
                Error::Data(format!("`{w}` is not a node output of the main graph"))
            })?;
            (start, end) = (start.min(p), end.max(p + 1));
        }
        if start < self.pos {
            // Back to the start of the last segment run if that is enough, else of the model.
            if start >= self.last.0 {
                (self.pos, self.carried) = (self.last.0, self.last.1.clone());
            } else {
                (self.pos, self.carried) = (0, Vec::new());
            }
        }
        while self.pos < end {
            self.run_segment(wanted, samples, load, visit, progress)?;
        }
        Ok(())
    }

    /// Runs the segment starting at `pos` (to the next cut the engine can carry).
    fn run_segment(
        &mut self,
        wanted: &BTreeSet<String>,
        samples: &Samples,
        load: &mut Loader<'_>,
        visit: &mut Visit<'_>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(), Error> {
        let s = &self.segments;
        let a = self.pos;
        let first = samples.first()?;
        let mut ends = s.cuts.iter().copied().filter(|&c| c > a).chain([s.nodes()]);
        let (mut engine, fed, carry, b) = loop {
            let b = ends.next().unwrap_or(s.nodes());
            // Values produced here that nodes after `b` read, and the wanted ones made here.
            let made = |name: &String| s.producer.get(name).is_some_and(|&p| a <= p && p < b);
            let carry: Vec<String> = (s.producer.keys())
                .filter(|v| made(v) && s.last_read.get(*v).is_some_and(|&r| r >= b))
                .cloned()
                .collect();
            let mut outputs: BTreeSet<String> = carry.iter().cloned().collect();
            outputs.extend(wanted.iter().filter(|w| made(w)).cloned());
            let outputs: Vec<String> = outputs.into_iter().collect();
            if outputs.is_empty() {
                // Nothing made here is read later or wanted (a part of the graph only the
                // model's outputs read): skip it, carrying the earlier values on.
                let last_read = &s.last_read;
                let carried = std::mem::take(&mut self.carried);
                self.carried = (carried.into_iter())
                    .map(|c| {
                        c.into_iter()
                            .filter(|(n, _)| last_read.get(n).is_some_and(|&r| r >= b))
                            .collect()
                    })
                    .collect();
                self.pos = b;
                return Ok(());
            }
            let (model, fed) = s.model_of((a, b), &outputs, &self.types)?;
            let mut engine = load(&model)?;
            let feeds = self.feeds(&first, 0, &fed);
            let types = engine.output_types(&feeds)?;
            let uncarried = types
                .iter()
                .any(|(n, t)| carry.contains(n) && !CARRIED_TYPES.contains(t));
            if uncarried && b < s.nodes() {
                continue;
            }
            for (name, t) in types {
                let info = typed(&name, t);
                self.types.insert(name, info);
            }
            break (engine, fed, carry, b);
        };
        let keep = |name: &str, last_read: &BTreeMap<String, usize>| {
            last_read.get(name).is_some_and(|&r| r >= b)
        };
        let mut next: Vec<Sample> = Vec::with_capacity(samples.len());
        let segment = self.runs + 1;
        samples.each(|i, sample| {
            let feeds = self.feeds(&sample, i, &fed);
            let mut out: Sample = (self.carried.get(i).into_iter().flatten())
                .filter(|(n, _)| keep(n, &self.segments.last_read))
                .cloned()
                .collect();
            let mut failed = None;
            engine.run_each(&feeds, &mut |name, dims, data| {
                if failed.is_some() {
                    return;
                }
                if wanted.contains(name)
                    && let Err(e) = visit(i, name, dims, data)
                {
                    failed = Some(e);
                    return;
                }
                if carry.iter().any(|c| c == name) {
                    match data {
                        DataRef::Other => {
                            failed = Some(Error::Data(format!(
                                "segment run: `{name}` crosses a cut in a type the engine \
                                 cannot hand back"
                            )))
                        }
                        data => out.push((
                            name.to_owned(),
                            Tensor {
                                dims: dims.to_vec(),
                                data: data.to_owned(),
                            },
                        )),
                    }
                }
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
            next.push(out);
            progress(segment, i + 1);
            Ok::<(), Error>(())
        })?;
        drop(engine);
        self.last = (a, std::mem::replace(&mut self.carried, next));
        self.pos = b;
        self.runs += 1;
        Ok(())
    }

    /// Sample `i`'s feeds for a segment reading `fed`: graph inputs from the sample, the rest from
    /// the values carried across the cut.
    fn feeds(&self, sample: &Sample, i: usize, fed: &[String]) -> Vec<(String, Tensor)> {
        let carried = self.carried.get(i).map_or(&[][..], Vec::as_slice);
        fed.iter()
            .filter_map(|name| {
                sample
                    .iter()
                    .chain(carried)
                    .find(|(n, _)| n == name)
                    .cloned()
            })
            .collect()
    }
}

/// A value info naming `name` with element type `elem` and no shape.
fn typed(name: &str, elem: i32) -> pb::ValueInfoProto {
    pb::ValueInfoProto {
        name: Some(name.to_owned()),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: Some(elem),
                shape: None,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
        pairs.iter().map(|&(n, p)| (n.to_owned(), p)).collect()
    }

    /// Cuts fall after the weight target, at the quietest boundaries only.
    #[test]
    fn cuts_follow_weights_and_quiet_boundaries() {
        // A chain x0 -> ... -> x4, plus `a` and `b` made by node 0 and read by node 2: the
        // boundaries before nodes 1 and 2 carry three values, those before 3 and 4 one.
        let producer = names(&[
            ("x0", 0),
            ("x1", 1),
            ("x2", 2),
            ("x3", 3),
            ("a", 0),
            ("b", 0),
        ]);
        let last_read = names(&[
            ("x0", 1),
            ("x1", 2),
            ("x2", 3),
            ("x3", 4),
            ("a", 2),
            ("b", 2),
        ]);
        let weight = [10; 5];
        assert_eq!(plan_cuts(&weight, &producer, &last_read, 10), vec![3, 4]);
        assert_eq!(plan_cuts(&weight, &producer, &last_read, 25), vec![3]);
        assert_eq!(
            plan_cuts(&weight, &producer, &last_read, 0),
            Vec::<usize>::new()
        );
    }
}
