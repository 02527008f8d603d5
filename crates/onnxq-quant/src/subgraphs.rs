//! Editing the subgraph bodies (If/Loop/Scan) of a graph's nodes, for the passes that quantize
//! inside them: each body is taken out of its node so it can be edited while the enclosing graph
//! is read as its scope, then put back, and the enclosing graph's record of what the bodies read
//! is re-derived, so a weight no body reads any more can be removed there.

use onnxq_ir::{Graph, NodeId};

use crate::edit::node_label;
use crate::error::{Error, Result};
use crate::select::has_subgraphs;

/// Calls `visit(body, scope, path)` on every subgraph body of `g`'s nodes, where `scope` is `g`
/// followed by `outer` (the closest enclosing graph first) and `path` names the body for reports
/// (`main/If_0.then_branch`, `[i]` for the i-th of a list attribute).
pub(crate) fn edit_bodies(
    g: &mut Graph,
    outer: &[&Graph],
    path: &str,
    mut visit: impl FnMut(&mut Graph, &[&Graph], &str) -> Result<()>,
) -> Result<()> {
    let with_subgraphs: Vec<NodeId> = g
        .nodes()
        .filter(|(_, n)| has_subgraphs(n))
        .map(|(id, _)| id)
        .collect();
    for id in with_subgraphs {
        let label = g.node(id).map(|n| node_label(g, n)).unwrap_or_default();
        let mut attrs = std::mem::take(
            &mut g
                .node_mut(id)
                .ok_or_else(|| Error::Internal("node vanished".into()))?
                .attributes,
        );
        let mut scope = vec![&*g];
        scope.extend_from_slice(outer);
        for a in &mut attrs {
            let attr_name = a.name().to_owned();
            for (i, sub) in a.subgraphs.iter_mut().enumerate() {
                let index = if i > 0 {
                    format!("[{i}]")
                } else {
                    String::new()
                };
                visit(sub, &scope, &format!("{path}/{label}.{attr_name}{index}"))?;
                // A value of the enclosing graph the body no longer reads is forgotten here...
                sub.forget_unread_outer();
            }
        }
        if let Some(n) = g.node_mut(id) {
            n.attributes = attrs;
        }
        // ...and no longer counts as read by the node there.
        g.refresh_subgraph_uses(id).map_err(Error::edit)?;
    }
    Ok(())
}
