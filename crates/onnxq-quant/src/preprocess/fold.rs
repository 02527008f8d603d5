//! Constant folding of shape arithmetic: a node output whose contents inference knows as
//! integers (`Shape` of a tensor with static dims, the `Gather`/`Concat`/`Unsqueeze`/arithmetic
//! built on it, a `Range` of constants, ...) becomes an initializer, and the nodes that computed it
//! are left to dead-node removal. Only int64/int32 tensors of at most a few dozen elements are
//! tracked, so this folds shape subgraphs, not weights. Nothing is folded when a declared shape
//! contradicts inference: contents derived from a wrong declaration would bake it in.

use onnxq_ir::{Def, Model, ValueId};

use crate::edit::tensor;

/// Folds every main-graph node output with known integer contents; returns how many.
pub(crate) fn fold_shape_constants(m: &mut Model) -> onnxq_ir::Result<usize> {
    // IR < 4 lists every initializer among the graph inputs; folding would have to add inputs.
    if m.proto.ir_version() < 4 {
        return Ok(0);
    }
    let inf = onnxq_infer::infer(m)?;
    if !inf.conflicts.is_empty() {
        return Ok(0);
    }
    let g = &m.graph;
    let found: Vec<(ValueId, Vec<i64>, Vec<i64>, i32)> = g
        .values()
        .filter(|(_, v)| matches!(v.def(), Def::Node { .. }) && !v.uses().is_empty())
        .filter_map(|(id, v)| {
            let f = inf.facts.get(v.name())?;
            let elem = f.elem.filter(|&e| e == 7 || e == 6)?;
            let values = f.ints()?;
            let dims: Vec<i64> = f
                .shape
                .as_ref()?
                .iter()
                .map(onnxq_infer::Dim::value)
                .collect::<Option<_>>()?;
            (dims.iter().product::<i64>() == values.len() as i64)
                .then_some((id, dims, values, elem))
        })
        // A graph output keeps its producer (its name is public and must stay a node output).
        .filter(|(id, ..)| !g.outputs().iter().any(|p| p.value == *id))
        .collect();
    let g = &mut m.graph;
    for (v, dims, values, elem) in &found {
        let raw: Vec<u8> = if *elem == 7 {
            values.iter().flat_map(|x| x.to_le_bytes()).collect()
        } else {
            values
                .iter()
                .flat_map(|&x| (x as i32).to_le_bytes())
                .collect()
        };
        let name = g.fresh_name(&format!("{}_folded", g.value(*v).name()));
        let c = g.add_initializer(&name, tensor(dims.clone(), *elem, raw))?;
        g.substitute(*v, c)?;
    }
    Ok(found.len())
}
