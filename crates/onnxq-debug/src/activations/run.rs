//! The measuring loop: each sample through the float model, then the quantized model, both
//! augmented so every compared tensor is an output. A float value is kept only until the
//! quantized run has shown its counterpart; the sums are per tensor, so memory holds one
//! sample's tensors whatever the number of samples ([`Counters`] tells how much).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use onnxq_calib::data::Samples;
use onnxq_engine::{Data, DataRef, Executor};

use super::plan::{Counterpart, Plan};
use crate::error::Error;
use crate::stats::{Sums, Top1};

/// What the loop held, for tests and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Samples run.
    pub samples: usize,
    /// The most bytes of tensor values held at once.
    pub peak_held_bytes: usize,
}

/// The sums of one comparison run.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Per plan item: pre- against post-QDQ.
    pub qdq: Vec<Option<Sums>>,
    /// Per plan item: float against its counterpart.
    pub cross: Vec<Option<Sums>>,
    /// Per plan output: float against quantized, and argmax agreement.
    pub outputs: Vec<(Sums, Top1)>,
    /// Tensors left out, with the reason (their values did not fit on some sample).
    pub dropped: Vec<String>,
    /// Memory and samples.
    pub counters: Counters,
}

/// One sample's values kept by name.
type Kept = HashMap<String, (Vec<usize>, Vec<f32>)>;

fn bytes(k: &Kept) -> usize {
    k.values().map(|(_, v)| v.len() * 4).sum()
}

/// The loop's state: what each quantized tensor is compared with, and the sums so far.
struct Loop<'p> {
    plan: &'p Plan,
    wanted_float: BTreeSet<&'p str>,
    members: BTreeSet<&'p str>,
    by_counterpart: BTreeMap<&'p str, Vec<usize>>,
    output_at: BTreeMap<&'p str, usize>,
    dead: Vec<bool>,
    m: Measured,
}

impl<'p> Loop<'p> {
    fn new(plan: &'p Plan) -> Loop<'p> {
        let n = plan.items.len();
        let mut l = Loop {
            plan,
            wanted_float: plan.items.iter().map(|i| i.name.as_str()).collect(),
            members: BTreeSet::new(),
            by_counterpart: BTreeMap::new(),
            output_at: plan
                .outputs
                .iter()
                .enumerate()
                .map(|(i, o)| (o.as_str(), i))
                .collect(),
            dead: vec![false; n],
            m: Measured {
                qdq: vec![None; n],
                cross: vec![None; n],
                outputs: vec![Default::default(); plan.outputs.len()],
                ..Default::default()
            },
        };
        l.wanted_float
            .extend(plan.outputs.iter().map(String::as_str));
        for (i, item) in plan.items.iter().enumerate() {
            if let Some((pre, post)) = &item.pair {
                l.members.insert(pre);
                l.members.insert(post);
            }
            if let Some(c) = &item.counterpart {
                l.by_counterpart.entry(c.tensor()).or_default().push(i);
            }
        }
        l
    }

    /// One quantized-model value: against the float values of this sample (`fvals`), kept in
    /// `qvals` when a Q/DQ pair needs it.
    fn visit(
        &mut self,
        s: usize,
        fvals: &Kept,
        qvals: &mut Kept,
        name: &str,
        dims: &[usize],
        data: DataRef<'_>,
    ) {
        for &i in self.by_counterpart.get(name).into_iter().flatten() {
            let item = &self.plan.items[i];
            let Some((_, x)) = fvals.get(&item.name) else {
                continue;
            };
            let y: Option<Cow<'_, [f32]>> = match (&item.counterpart, data) {
                (Some(Counterpart::Float(_)), DataRef::F32(v)) => Some(v.into()),
                (
                    Some(Counterpart::Dequantized {
                        scale, zero_point, ..
                    }),
                    _,
                ) => dequantize(data, *scale, *zero_point).map(Into::into),
                _ => None,
            };
            match y {
                _ if self.dead[i] => {}
                Some(y) if y.len() == x.len() => self.m.cross[i]
                    .get_or_insert_with(Sums::default)
                    .add_f32(x, &y),
                _ => {
                    self.dead[i] = true;
                    self.m.dropped.push(format!(
                        "`{}`: the quantized model's `{name}` ({dims:?}) does not match the float \
                         tensor ({} elements) on sample {s}",
                        item.name,
                        x.len()
                    ));
                }
            }
        }
        if let (Some(&o), DataRef::F32(y)) = (self.output_at.get(name), data)
            && let Some((fd, x)) = fvals.get(name)
            && x.len() == y.len()
        {
            let (sums, top) = &mut self.m.outputs[o];
            sums.add_f32(x, y);
            if let [.., last] = fd[..]
                && fd.len() >= 2
            {
                top.add(x, y, last);
            }
        }
        if let (true, DataRef::F32(v)) = (self.members.contains(name), data) {
            qvals.insert(name.to_owned(), (dims.to_vec(), v.to_vec()));
        }
    }

    /// The Q/DQ pairs of one sample, once the quantized run has shown every value.
    fn pairs(&mut self, qvals: &Kept) {
        for (i, item) in self.plan.items.iter().enumerate() {
            let Some((pre, post)) = &item.pair else {
                continue;
            };
            if let (Some((_, x)), Some((_, y))) = (qvals.get(pre), qvals.get(post))
                && x.len() == y.len()
            {
                self.m.qdq[i]
                    .get_or_insert_with(Sums::default)
                    .add_f32(x, y);
            }
        }
    }
}

/// Integer values as `(q − zero_point) · scale` in float32.
fn dequantize(data: DataRef<'_>, scale: f64, zp: f64) -> Option<Vec<f32>> {
    let deq = |q: f64| ((q - zp) * scale) as f32;
    match data {
        DataRef::U8(v) => Some(v.iter().map(|&q| deq(f64::from(q))).collect()),
        DataRef::I8(v) => Some(v.iter().map(|&q| deq(f64::from(q))).collect()),
        DataRef::I32(v) => Some(v.iter().map(|&q| deq(f64::from(q))).collect()),
        _ => None,
    }
}

/// Runs every sample through both engines (sessions of the augmented models) and sums the
/// comparisons `plan` asks for. `progress` is called after each sample.
pub fn measure(
    plan: &Plan,
    float: &mut dyn Executor,
    quant: &mut dyn Executor,
    samples: &Samples,
    mut progress: impl FnMut(usize),
) -> Result<Measured, Error> {
    let mut l = Loop::new(plan);
    samples.each(|s, sample| {
        let mut fvals: Kept = HashMap::new();
        for (name, t) in &sample {
            if let Data::F32(v) = &t.data {
                fvals.insert(name.clone(), (t.dims.clone(), v.clone()));
            }
        }
        float.run_each(&sample, &mut |name, dims, data| {
            if let (true, DataRef::F32(v)) = (l.wanted_float.contains(name), data) {
                fvals.insert(name.to_owned(), (dims.to_vec(), v.to_vec()));
            }
        })?;
        let mut qvals: Kept = HashMap::new();
        // Graph inputs are not engine outputs: the feeds are their values.
        for (name, t) in &sample {
            if let Data::F32(v) = &t.data {
                l.visit(s, &fvals, &mut qvals, name, &t.dims, DataRef::F32(v));
            }
        }
        quant.run_each(&sample, &mut |name, dims, data| {
            l.visit(s, &fvals, &mut qvals, name, dims, data)
        })?;
        l.pairs(&qvals);
        let held = bytes(&fvals) + bytes(&qvals);
        l.m.counters.peak_held_bytes = l.m.counters.peak_held_bytes.max(held);
        l.m.counters.samples = s + 1;
        progress(s + 1);
        Ok::<(), Error>(())
    })?;
    let mut m = l.m;
    for (i, d) in l.dead.iter().enumerate() {
        if *d {
            m.cross[i] = None;
        }
    }
    Ok(m)
}
