//! Node selection shared by every pass: op types, `--include`/`--exclude` names or globs, the check
//! that every entry matches some node, and the report entries of candidates inside subgraphs a pass
//! leaves alone.

use std::collections::BTreeSet;

use onnxq_ir::{Graph, Node};

use crate::edit::node_label;
use crate::error::{Error, Result};
use crate::report::{Entry, Outcome, Report};

/// What the user selected: op types (empty: every candidate) and node names or globs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Selection<'a> {
    /// Op types to quantize; empty means every op type the pass handles.
    pub(crate) op_types: &'a [String],
    /// Names or globs to quantize; empty means every node of a selected op type.
    pub(crate) include: &'a [String],
    /// Names or globs never to quantize.
    pub(crate) exclude: &'a [String],
}

/// Which node names an `--include`/`--exclude` entry may match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The main graph's nodes only (the pass does not enter subgraphs).
    MainGraph,
    /// The main graph's nodes and those of every subgraph, at any depth.
    WithSubgraphs,
}

impl Selection<'_> {
    /// Whether a node of `op_type` named `name` is selected, or why not.
    pub(crate) fn check(&self, op_type: &str, name: &str) -> Result<(), String> {
        if !self.op_types.is_empty() && !self.op_types.iter().any(|t| t == op_type) {
            return Err("op type not selected (--op-types)".into());
        }
        if let Some(p) = self.exclude.iter().find(|p| glob_match(p, name)) {
            return Err(format!("excluded by `{p}`"));
        }
        if !self.include.is_empty() && !self.include.iter().any(|p| glob_match(p, name)) {
            return Err("not matched by --include".into());
        }
        Ok(())
    }

    /// Fails on an include or exclude entry that matches no node in `scope`: a typo would
    /// otherwise silently quantize everything or nothing.
    pub(crate) fn check_entries(&self, g: &Graph, scope: Scope) -> Result<()> {
        check_patterns(g, scope, "--include", self.include)?;
        check_patterns(g, scope, "--exclude", self.exclude)
    }
}

/// Fails on a pattern of `list` (given as `what`) that matches no node name in `scope`.
pub(crate) fn check_patterns<S: AsRef<str>>(
    g: &Graph,
    scope: Scope,
    what: &str,
    list: &[S],
) -> Result<()> {
    let mut names = BTreeSet::new();
    collect_names(g, scope, &mut names);
    for p in list.iter().map(AsRef::as_ref) {
        if !names.iter().any(|n| glob_match(p, n)) {
            return Err(Error::Selection(format!(
                "{what} `{p}` matches no node of the model"
            )));
        }
    }
    Ok(())
}

fn collect_names<'g>(g: &'g Graph, scope: Scope, names: &mut BTreeSet<&'g str>) {
    for (_, n) in g.nodes() {
        names.insert(n.name());
        if scope == Scope::WithSubgraphs {
            for sub in n.attributes.iter().flat_map(|a| &a.subgraphs) {
                collect_names(sub, scope, names);
            }
        }
    }
}

/// Whether `n` holds subgraphs (If, Loop, Scan bodies).
pub(crate) fn has_subgraphs(n: &Node) -> bool {
    n.attributes.iter().any(|a| !a.subgraphs.is_empty())
}

/// Records the candidates (`is_candidate`) inside a subgraph that is left alone, at any depth,
/// under `path` (ORT silently skips them).
pub(crate) fn report_subgraph_skips(
    g: &Graph,
    path: &str,
    is_candidate: &dyn Fn(&Node) -> bool,
    report: &mut Report,
) {
    for (_, n) in g.nodes() {
        if is_candidate(n) {
            report.nodes.push(Entry::new(
                path,
                node_label(g, n),
                n.op_type(),
                Outcome::skipped("inside a subgraph; pass --enable-subgraph to quantize it"),
            ));
        }
        for (i, sub) in n
            .attributes
            .iter()
            .flat_map(|a| a.subgraphs.iter().map(move |s| (a.name(), s)))
            .enumerate()
        {
            report_subgraph_skips(
                sub.1,
                &format!("{path}/{}.{}[{i}]", node_label(g, n), sub.0),
                is_candidate,
                report,
            );
        }
    }
}

/// Whether `name` matches a pattern: exact, or a glob with `*` (any run) and `?` (one character).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Iterative wildcard matching with backtracking to the last `*`.
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("/m/encoder/*", "/m/encoder/layer.0/MatMul"));
        assert!(glob_match("*MatMul*", "/a/MatMul_1"));
        assert!(glob_match("conv?", "conv1"));
        assert!(!glob_match("conv?", "conv12"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "a-b-b-c"));
        assert!(!glob_match("a*b*c", "a-c-b"));
    }
}
