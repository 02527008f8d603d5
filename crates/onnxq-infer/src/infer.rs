//! The inference driver: facts for the graph's inputs (declared types, named dims kept, unnamed
//! ones given fresh `unk__N` symbols) and initializers, then every node in topological order
//! through its rule. A node without a rule, or whose rule cannot tell, leaves its outputs at what
//! the model declares and is reported; a declared shape that contradicts an inferred one is
//! reported with both, and the declared one is kept.

use std::collections::BTreeMap;

use onnxq_ir::{Def, Graph, Model};

use crate::control::Bodies;
use crate::dim::Dim;
use crate::fact::{Fact, from_tensor, from_type};
use crate::rules::{Ctx, rule};

/// A node whose outputs were not inferred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    /// The node's name (or its first output's when it has none).
    pub node: String,
    /// `domain:op` (`:Add` for the default domain).
    pub op: String,
    /// Why.
    pub reason: String,
}

/// A value whose declared shape contradicts the inferred one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The value.
    pub value: String,
    /// As the model declares it.
    pub declared: String,
    /// As inferred.
    pub inferred: String,
}

/// The result of inference over a model's main graph.
#[derive(Debug, Clone, Default)]
pub struct Inference {
    /// Every value's fact, by name.
    pub facts: BTreeMap<String, Fact>,
    /// Nodes whose outputs were not inferred.
    pub unknown: Vec<Unknown>,
    /// Declared shapes that contradict inference.
    pub conflicts: Vec<Conflict>,
    /// Nodes whose known input dims cannot meet (a Reshape of 6 elements into `[5, -1]`, a
    /// MatMul of `[2, 3]` by `[4, 5]`), which ONNX Runtime refuses at load.
    pub invalid: Vec<Unknown>,
}

impl Inference {
    /// Node outputs with a known type and rank, and node outputs in all.
    pub fn coverage(&self, model: &Model) -> (usize, usize) {
        let g = &model.graph;
        let outputs: Vec<&str> = g
            .values()
            .filter(|(_, v)| matches!(v.def(), Def::Node { .. }))
            .map(|(_, v)| v.name())
            .collect();
        let known = outputs
            .iter()
            .filter(|n| self.facts.get(**n).is_some_and(Fact::complete))
            .count();
        (known, outputs.len())
    }
}

/// Infers the type and shape of every value of `model`'s main graph (subgraph bodies are
/// inferred for their outputs, which their If/Loop/Scan node returns).
pub fn infer(model: &Model) -> Result<Inference, onnxq_ir::Error> {
    let mut out = Inference::default();
    let mut cx = Run {
        model,
        next: 0,
        unknown: Vec::new(),
        conflicts: Vec::new(),
        invalid: Vec::new(),
        depth: 0,
    };
    out.facts = cx.graph(&model.graph, &BTreeMap::new(), &[])?;
    out.unknown = cx.unknown;
    out.conflicts = cx.conflicts;
    out.invalid = cx.invalid;
    Ok(out)
}

/// One inference run: the fresh-symbol counter and what it reports.
pub(crate) struct Run<'m> {
    model: &'m Model,
    next: usize,
    unknown: Vec<Unknown>,
    conflicts: Vec<Conflict>,
    invalid: Vec<Unknown>,
    /// How deep in model-local function calls the run is.
    depth: usize,
}

impl crate::control::Bodies for Run<'_> {
    /// A fresh symbol for a dimension nothing names.
    fn fresh(&mut self) -> Dim {
        self.next += 1;
        Dim::symbol(&format!("unk__{}", self.next - 1))
    }

    /// The facts of every value of `g`, which sees the values of `outer` (its enclosing graphs');
    /// `inputs`, when given, are the facts of `g`'s inputs in order (a body's, from its node).
    fn graph(
        &mut self,
        g: &Graph,
        outer: &BTreeMap<String, Fact>,
        inputs: &[Fact],
    ) -> Result<BTreeMap<String, Fact>, onnxq_ir::Error> {
        let mut declared: BTreeMap<String, Fact> = BTreeMap::new();
        for p in g.inputs().iter().chain(g.value_info()).chain(g.outputs()) {
            if let Some(t) = &p.info.r#type {
                let f = from_type(t, &mut || self.fresh());
                declared.insert(g.value(p.value).name().to_owned(), f);
            }
        }
        let mut facts = outer.clone();
        for (i, p) in g.inputs().iter().enumerate() {
            let name = g.value(p.value).name();
            if let Some(f) = inputs.get(i) {
                let f = match declared.get(name) {
                    Some(d) => merge(f, d).unwrap_or_else(|()| d.clone()),
                    None => f.clone(),
                };
                declared.insert(name.to_owned(), f);
            }
        }
        for (_, v) in g.values() {
            match v.def() {
                Def::Initializer(t) => {
                    facts.insert(v.name().to_owned(), from_tensor(t));
                }
                Def::Input => {
                    let f = declared.get(v.name()).cloned().unwrap_or_default();
                    facts.insert(v.name().to_owned(), f);
                }
                _ => {}
            }
        }
        for id in g.topological_order()? {
            if let Some(node) = g.node(id) {
                self.node(g, node, &declared, &mut facts)?;
            }
        }
        Ok(facts)
    }
}

impl Run<'_> {
    /// Infers one node's outputs into `facts`.
    fn node(
        &mut self,
        g: &Graph,
        node: &onnxq_ir::Node,
        declared: &BTreeMap<String, Fact>,
        facts: &mut BTreeMap<String, Fact>,
    ) -> Result<(), onnxq_ir::Error> {
        let opset = self.model.opset(node.domain()).unwrap_or(0);
        let inputs: Vec<Option<&Fact>> = node
            .inputs()
            .iter()
            .map(|i| i.and_then(|v| facts.get(g.value(v).name())))
            .collect();
        // Inputs whose contents are all known, for the evaluator (small shape tensors).
        let contents: Option<Vec<Option<crate::eval::Val>>> =
            matches!(node.domain(), "" | "ai.onnx")
                .then(|| {
                    (inputs.iter())
                        .map(|f| match f {
                            None => Some(None),
                            Some(f) => f.contents().map(Some),
                        })
                        .collect::<Option<_>>()
                })
                .flatten();
        let model = self.model;
        let outcome = if node.attributes.iter().any(|a| !a.subgraphs.is_empty()) {
            let inputs: Vec<Option<Fact>> = inputs.into_iter().map(|f| f.cloned()).collect();
            crate::control::node(self, node, &inputs, facts)?
        } else if let Some(f) = crate::function::called(model, node) {
            self.depth += 1;
            let depth = self.depth;
            let out = crate::function::call(self, model, f, node, &inputs, depth);
            self.depth -= 1;
            out?
        } else {
            match rule(node.domain(), node.op_type()) {
                None => Err(format!("no rule for {} at opset {opset}", op_name(node))),
                Some(r) => {
                    let ctx = Ctx {
                        node,
                        inputs,
                        opset,
                        invalid: Default::default(),
                    };
                    let outcome = r(&ctx);
                    if let Some(reason) = ctx.invalid.take() {
                        self.invalid.push(Unknown {
                            node: label(g, node),
                            op: op_name(node),
                            reason,
                        });
                    }
                    outcome
                }
            }
        };
        let mut inferred = outcome.unwrap_or_else(|reason| {
            self.unknown.push(Unknown {
                node: label(g, node),
                op: op_name(node),
                reason,
            });
            Vec::new()
        });
        let missing = inferred
            .iter()
            .any(|f| f.value.is_none() && f.floats.is_none());
        if let Some(ins) = contents.filter(|_| missing && !inferred.is_empty()) {
            let refs: Vec<Option<&crate::eval::Val>> = ins.iter().map(Option::as_ref).collect();
            for (f, v) in inferred
                .iter_mut()
                .zip(crate::eval::eval(node, &refs, opset).unwrap_or_default())
            {
                if f.value.is_none() && f.floats.is_none() {
                    crate::fact::set_contents(f, &v);
                }
            }
        }
        for (slot, v) in node.outputs().iter().enumerate() {
            let Some(v) = v else { continue };
            let name = g.value(*v).name().to_owned();
            let fact = match (inferred.get(slot), declared.get(&name)) {
                (Some(f), Some(d)) => merge(f, d).unwrap_or_else(|()| {
                    self.conflicts.push(Conflict {
                        value: name.clone(),
                        declared: describe(d),
                        inferred: describe(f),
                    });
                    d.clone()
                }),
                (Some(f), None) => f.clone(),
                (None, Some(d)) => d.clone(),
                (None, None) => Fact::default(),
            };
            facts.insert(name, fact);
        }
        Ok(())
    }
}

fn op_name(node: &onnxq_ir::Node) -> String {
    let d = node.domain();
    let d = if d == "ai.onnx" { "" } else { d };
    format!("{d}:{}", node.op_type())
}

/// The inferred fact refined by the declared one (a known declared dim replaces a symbol), or
/// `Err` when they contradict (element types, ranks or known dims differ).
pub(crate) fn merge(inferred: &Fact, declared: &Fact) -> Result<Fact, ()> {
    let mut m = inferred.clone();
    match (inferred.elem, declared.elem) {
        (Some(a), Some(b)) if a != b => return Err(()),
        (None, b) => m.elem = b,
        _ => {}
    }
    match (&inferred.shape, &declared.shape) {
        (Some(a), Some(b)) if a.len() != b.len() => return Err(()),
        (Some(a), Some(b)) => {
            let mut dims = Vec::with_capacity(a.len());
            for (x, y) in a.iter().zip(b) {
                dims.push(match (x.value(), y.value()) {
                    (Some(p), Some(q)) if p != q => return Err(()),
                    (None, Some(_)) => y.clone(),
                    _ => x.clone(),
                });
            }
            m.shape = Some(dims);
        }
        (None, Some(b)) => m.shape = Some(b.clone()),
        _ => {}
    }
    Ok(m)
}

/// `float32[batch, 128]` style.
pub fn describe(f: &Fact) -> String {
    let e = f.elem.map_or("?".to_owned(), |e| e.to_string());
    match &f.shape {
        None => format!("elem {e}, rank unknown"),
        Some(s) => {
            let dims: Vec<String> = s.iter().map(ToString::to_string).collect();
            format!("elem {e} [{}]", dims.join(", "))
        }
    }
}

/// A node's label in reports: its name, else its first output's.
fn label(g: &Graph, node: &onnxq_ir::Node) -> String {
    let first = node.outputs().iter().flatten().next();
    match (node.name(), first) {
        ("", Some(&v)) => g.value(v).name().to_owned(),
        (n, _) => n.to_owned(),
    }
}
