//! Where the error starts: each activation's drop (how many dB its SQNR is below the worst of
//! the float tensors its node reads: the error that node adds), the first activation in graph
//! order whose drop passes a threshold, and the worst tensors overall.

use std::collections::HashMap;

use crate::report::{ActivationEntry, Ranked, Ranking, WeightEntry};

/// The SQNR an activation is ranked by: across the models where measured, else its pair's.
pub fn activation_sqnr(a: &ActivationEntry) -> Option<f64> {
    a.xmodel_sqnr_db.or(a.qdq_sqnr_db)
}

/// Inputs better than this count as this good when drops are measured: an exact input (≈ 300 dB)
/// would make every first quantized node look like a collapse, and 8-bit quantization of a
/// well-behaved tensor gives about 40 dB.
pub const INPUT_CEILING_DB: f64 = 40.0;

/// Sets `drop_db` of every activation from the SQNR of the tensors its producer reads
/// (`inputs[i]` for `acts[i]`; tensors without a figure are left out, those better than
/// [`INPUT_CEILING_DB`] count as that).
pub fn set_drops(acts: &mut [ActivationEntry], inputs: &[Vec<String>]) {
    let sqnr: HashMap<String, f64> = acts
        .iter()
        .filter_map(|a| Some((a.name.clone(), a.xmodel_sqnr_db?)))
        .collect();
    for (a, ins) in acts.iter_mut().zip(inputs) {
        let worst_in = ins
            .iter()
            .filter_map(|n| sqnr.get(n))
            .map(|s| s.min(INPUT_CEILING_DB))
            .reduce(f64::min);
        a.drop_db = match (worst_in, a.xmodel_sqnr_db) {
            (Some(w), Some(own)) => Some(w - own),
            _ => None,
        };
    }
}

/// The ranking: the first drop above `threshold_db` and the `top` worst tensors.
pub fn rank(
    acts: &[ActivationEntry],
    weights: &[WeightEntry],
    threshold_db: f64,
    top: usize,
) -> Ranking {
    let ranked_act = |a: &ActivationEntry| -> Option<Ranked> {
        Some(Ranked {
            kind: "activation".into(),
            name: a.name.clone(),
            node: a.producer.clone(),
            index: a.index,
            sqnr_db: activation_sqnr(a)?,
            drop_db: a.drop_db,
        })
    };
    let first_drop = acts
        .iter()
        .find(|a| a.drop_db.is_some_and(|d| d > threshold_db))
        .and_then(ranked_act);
    let mut all: Vec<Ranked> = acts.iter().filter_map(ranked_act).collect();
    all.extend(weights.iter().map(|w| Ranked {
        kind: "weight".into(),
        name: w.name.clone(),
        node: w.consumer.clone(),
        index: w.index,
        sqnr_db: w.sqnr_db,
        drop_db: None,
    }));
    all.sort_by(|a, b| a.sqnr_db.total_cmp(&b.sqnr_db).then(a.index.cmp(&b.index)));
    all.truncate(top);
    Ranking {
        threshold_db,
        first_drop,
        worst: all,
    }
}

/// Float nodes worth excluding, most promising first: the producers of the largest drops, then
/// the readers of the worst weights; at most `n`, each once.
pub fn candidates(
    acts: &[ActivationEntry],
    weights: &[WeightEntry],
    n: usize,
) -> Vec<(String, String)> {
    let mut by_drop: Vec<&ActivationEntry> = acts.iter().filter(|a| a.drop_db.is_some()).collect();
    by_drop.sort_by(|a, b| {
        b.drop_db
            .unwrap_or(0.0)
            .total_cmp(&a.drop_db.unwrap_or(0.0))
            .then(a.index.cmp(&b.index))
    });
    let mut ws: Vec<&WeightEntry> = weights.iter().collect();
    ws.sort_by(|a, b| a.sqnr_db.total_cmp(&b.sqnr_db).then(a.index.cmp(&b.index)));
    let mut out: Vec<(String, String)> = Vec::new();
    let mut push = |node: &Option<String>, why: String| {
        if let Some(node) = node
            && out.len() < n
            && !out.iter().any(|(o, _)| o == node)
        {
            out.push((node.clone(), why));
        }
    };
    // Interleaved so a model whose trouble is one weight still gets that node tried early.
    let mut d = by_drop.iter();
    let mut w = ws.iter();
    loop {
        let (a, b) = (d.next(), w.next());
        if a.is_none() && b.is_none() {
            break;
        }
        if let Some(a) = a {
            push(
                &a.producer,
                format!(
                    "activation `{}` drops {:.1} dB below its inputs ({:.1} dB)",
                    a.name,
                    a.drop_db.unwrap_or(0.0),
                    activation_sqnr(a).unwrap_or(0.0)
                ),
            );
        }
        if let Some(b) = b {
            push(
                &b.consumer,
                format!("weight `{}` at {:.1} dB", b.name, b.sqnr_db),
            );
        }
    }
    out
}
