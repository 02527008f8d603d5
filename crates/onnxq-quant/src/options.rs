//! Settings of a dynamic quantization run, with ONNX Runtime's meanings and defaults.

use crate::numerics::QuantType;

/// Options of `quantize --mode dynamic` (ORT's `quantize_dynamic` arguments and extra options).
#[derive(Debug, Clone, PartialEq)]
pub struct DynamicOptions {
    /// Weight type: int8 (default) or uint8. Activations are always uint8, quantized at run time.
    pub weight_type: QuantType,
    /// Per-channel weights (MatMul: along the last axis; Conv: never, as in ORT).
    pub per_channel: bool,
    /// 7-bit weight ranges (for CPUs without VNNI, where int8 products can saturate).
    pub reduce_range: bool,
    /// Op types to quantize; empty means every op the dynamic registry knows.
    pub op_types: Vec<String>,
    /// Node names or glob patterns (`*`, `?`) to quantize; empty means all selected op types.
    pub include: Vec<String>,
    /// Node names or glob patterns never to quantize.
    pub exclude: Vec<String>,
    /// Only quantize MatMuls whose B input is a constant (ORT's `MatMulConstBOnly`, default true in
    /// dynamic mode).
    pub matmul_const_b_only: bool,
    /// Quantize inside If/Loop/Scan bodies (ORT's `EnableSubgraph`, default false).
    pub enable_subgraph: bool,
    /// Symmetric weights; `None` means ORT's default (symmetric for signed types).
    pub weight_symmetric: Option<bool>,
    /// Conv weights per output channel (an onnxq extension; ORT's ConvInteger is per tensor only).
    /// ONNX Runtime's ConvInteger needs a scalar weight zero point, so this needs symmetric weights:
    /// every channel's zero point is 0 and the per-channel scales apply after the integer product.
    pub conv_per_channel: bool,
}

impl Default for DynamicOptions {
    fn default() -> Self {
        DynamicOptions {
            weight_type: QuantType::I8,
            per_channel: false,
            reduce_range: false,
            op_types: Vec::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            matmul_const_b_only: true,
            enable_subgraph: false,
            weight_symmetric: None,
            conv_per_channel: false,
        }
    }
}

impl DynamicOptions {
    /// Whether weights are symmetric under these options.
    pub fn weight_symmetric(&self) -> bool {
        self.weight_symmetric
            .unwrap_or_else(|| self.weight_type.signed())
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
