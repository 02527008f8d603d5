//! `onnxq quantize --mode weight-only --format qdq` against ONNX Runtime's `MatMulNBitsQuantizer`
//! in its QDQ format (`tests/py/ort_weight_only.py --format qdq`), compared by
//! `tests/py/compare_weight_only.py --format qdq`: on the quantized part (the blocked
//! DequantizeLinear nodes and the MatMuls reading them) the same node pattern, names, attributes
//! and bit-identical INT4/UINT4 codes, scales and zero points; `onnx.checker`'s full check on
//! onnxq's model (converted to opset 21 node by node, where ORT's tool only overwrites the number);
//! outputs equal to ORT's model's where that one runs, close to the float model's everywhere.
//! 8-bit and Gather QDQ (which ORT's tool does not write) are checked for correctness; settings
//! the QDQ format cannot take and a model with a node that cannot be converted are refused.

#![expect(
    clippy::unwrap_used,
    reason = "tests: a panic is the test failure we want"
)]

mod common;

use std::ffi::OsStr;
use std::path::Path;

use common::{quantize, refused};
use onnxq_testkit::{corpus_feeds, corpus_model, run_py};

/// ORT's tool in the QDQ format; panics if it fails.
fn ort(model: &Path, out: &Path, flags: &[&str]) {
    let mut args: Vec<&OsStr> = vec![
        model.as_ref(),
        out.as_ref(),
        "--format".as_ref(),
        "qdq".as_ref(),
    ];
    args.extend(flags.iter().map(OsStr::new));
    let (ok, text) = run_py("ort_weight_only.py", &args);
    assert!(ok, "ORT's tool failed on {}: {text}", model.display());
}

/// The comparison script in the QDQ format; panics with its output unless every check passes.
fn compare(float: &Path, ours: &Path, orts: Option<&Path>, extra: &[&str]) -> String {
    let orts: &OsStr = orts.map_or("-".as_ref(), |p| p.as_os_str());
    let mut args: Vec<&OsStr> = vec![
        float.as_ref(),
        ours.as_ref(),
        orts,
        "--format".as_ref(),
        "qdq".as_ref(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let (ok, text) = run_py("compare_weight_only.py", &args);
    assert!(ok, "{} vs ORT:\n{text}", ours.display());
    text
}

/// onnxq and ORT's tool on the same model and flags, compared; returns the comparison's output.
fn parity(model: &Path, feeds: Option<&Path>, flags: &[&str], extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (mine, orts) = (dir.path().join("ours.onnx"), dir.path().join("ort.onnx"));
    let mut ours = vec!["--mode", "weight-only", "--format", "qdq"];
    ours.extend(flags);
    quantize(model, &mine, &ours);
    ort(model, &orts, flags);
    let mut args: Vec<&str> = extra.to_vec();
    let feeds_s = feeds.map(|f| f.to_str().unwrap().to_owned());
    if let Some(f) = &feeds_s {
        args.extend(["--feeds", f.as_str()]);
    }
    let text = compare(model, &mine, Some(&orts), &args);
    assert!(
        text.contains("nodes: ok") && text.contains("checker: ok"),
        "{text}"
    );
    text
}

const SETTINGS: &[&[&str]] = &[
    &["--block-size", "32", "--symmetric"],
    &["--block-size", "32"],
    &["--block-size", "128", "--symmetric"],
    &["--block-size", "128"],
];

/// DEFAULT 4-bit, symmetric (INT4) and asymmetric (UINT4 + zero points), blocks of 32 and 128, on
/// bytegpt (opset 18: ORT's model runs, and gives the same outputs) and minilm-l6-v2 (opset 14:
/// ORT's model has ReduceMean with an axes attribute at opset 21 and does not load; onnxq's does).
#[test]
fn qdq_matches_ort_on_the_corpus() {
    for name in ["bytegpt", "minilm-l6-v2"] {
        for flags in SETTINGS {
            let text = parity(
                &corpus_model(name),
                Some(&corpus_feeds(name)),
                flags,
                &["--min-cosine", "0.95"],
            );
            // bytegpt's ORT model runs, so outputs were compared with it (bit for bit); minilm's
            // does not load (ORT's tool leaves ReduceMean's axes attribute at opset 21).
            let runs = !text.contains("orts-runs: no");
            assert_eq!(runs, name == "bytegpt", "{name} {flags:?}: {text}");
        }
    }
}

/// The generated edge shapes (padded last block, odd and even block counts, N = 1, K below the
/// block, a 3-D weight, float16, a shared weight, an If branch, and a model at opset 11 whose
/// Unsqueeze and Softmax onnxq rewrites) match ORT's quantized part bit for bit.
#[test]
fn edge_shapes_match_ort() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, listing) = run_py(
        "make_weight_only_models.py",
        &[dir.path().as_os_str(), "--format".as_ref(), "qdq".as_ref()],
    );
    assert!(ok, "{listing}");
    for case in listing.lines() {
        let model = dir.path().join(format!("{case}.onnx"));
        for flags in SETTINGS {
            let text = parity(&model, None, flags, &["--min-cosine", "0.8"]);
            if case == "shared" {
                // ORT writes one DequantizeLinear per reader, both defining `w_DQ_Q4_output`.
                assert!(text.contains("orts-duplicates: 1"), "{text}");
            }
        }
    }
}

/// What ORT's tool does not write in the QDQ format, checked for correctness: 8-bit blocks
/// (INT8, or UINT8 with zero points; ONNX Runtime 1.31 runs them) and Gather tables (a blocked
/// DequantizeLinear along the quantize axis feeding the Gather).
#[test]
fn eight_bit_and_gather_run_in_ort() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, listing) = run_py("make_weight_only_models.py", &[dir.path().as_os_str()]);
    assert!(ok, "{listing}");
    let cases: &[(&str, &[&str])] = &[
        ("kpad", &["--bits", "8", "--block-size", "32"]),
        (
            "fp16",
            &["--bits", "8", "--block-size", "16", "--symmetric"],
        ),
        (
            "gather",
            &["--op-types", "MatMul,Gather", "--block-size", "32"],
        ),
        (
            "gather",
            &[
                "--op-types",
                "MatMul,Gather",
                "--block-size",
                "16",
                "--symmetric",
            ],
        ),
        // GatherBlockQuantized's symmetric 8-bit table is UINT8 offset by 128: written out as
        // the DequantizeLinear's zero point.
        (
            "gather",
            &[
                "--op-types",
                "MatMul,Gather",
                "--bits",
                "8",
                "--block-size",
                "16",
                "--symmetric",
            ],
        ),
    ];
    for (case, flags) in cases {
        let model = dir.path().join(format!("{case}.onnx"));
        let out = dir.path().join(format!("{case}-q.onnx"));
        let mut ours = vec!["--mode", "weight-only", "--format", "qdq"];
        ours.extend(*flags);
        let summary = quantize(&model, &out, &ours);
        let text = compare(&model, &out, None, &["--min-cosine", "0.95"]);
        assert!(text.contains("checker: ok"), "{case} {flags:?}: {text}");
        let bits = if flags.contains(&"8") { "8" } else { "4" };
        let op = if *case == "gather" {
            "Gather"
        } else {
            "MatMul"
        };
        let pattern = format!("DequantizeLinear {bits}-bit + {op}");
        assert!(summary.contains(&pattern), "{case} {flags:?}: {summary}");
    }
    for bytegpt in [
        &["--bits", "8", "--block-size", "64"][..],
        &["--op-types", "MatMul,Gather", "--block-size", "32"],
    ] {
        let model = corpus_model("bytegpt");
        let out = dir.path().join("bytegpt-q.onnx");
        let mut ours = vec!["--mode", "weight-only", "--format", "qdq"];
        ours.extend(bytegpt);
        quantize(&model, &out, &ours);
        let feeds = corpus_feeds("bytegpt");
        let text = compare(
            &model,
            &out,
            None,
            &["--feeds", feeds.to_str().unwrap(), "--min-cosine", "0.99"],
        );
        assert!(text.contains("checker: ok"), "bytegpt {bytegpt:?}: {text}");
    }
}

/// The table of a QDQ Gather holds GatherBlockQuantized's arithmetic: its codes, scales and zero
/// points are bit-identical to those of ORT's GatherBlockQuantized (QOperator) on bytegpt.
#[test]
fn gather_table_equals_ort_gather_block_quantized() {
    const SAME: &str = "import onnx, sys
ours, orts = (onnx.load(p) for p in sys.argv[1:3])
mine = {t.name: t for t in ours.graph.initializer}
gbq = [n for n in orts.graph.node if n.op_type == 'GatherBlockQuantized']
assert gbq, 'no GatherBlockQuantized in ORT model'
for t in orts.graph.initializer:
    if any(t.name in n.input for n in gbq):
        m = mine[t.name.replace('_Q4', '_DQ_Q4').replace('_scales', '_DQ_scales').replace('_zero_points', '_DQ_zero_points')]
        assert (m.data_type, list(m.dims), m.raw_data) == (t.data_type, list(t.dims), t.raw_data), t.name
        print(t.name, 'same')
";
    let dir = tempfile::tempdir().unwrap();
    let model = corpus_model("bytegpt");
    for sym in [&[][..], &["--symmetric"]] {
        let (mine, orts) = (dir.path().join("q.onnx"), dir.path().join("o.onnx"));
        let _ = std::fs::remove_file(&mine);
        let mut flags = vec!["--op-types", "MatMul,Gather", "--block-size", "32"];
        flags.extend(sym);
        let mut ours = vec!["--mode", "weight-only", "--format", "qdq"];
        ours.extend(&flags);
        quantize(&model, &mine, &ours);
        let mut args: Vec<&OsStr> = vec![model.as_ref(), orts.as_ref()];
        args.extend(flags.iter().map(OsStr::new));
        let (ok, text) = run_py("ort_weight_only.py", &args);
        assert!(ok, "{text}");
        let out =
            onnxq_testkit::python_ok(&["-c".as_ref(), SAME.as_ref(), mine.as_ref(), orts.as_ref()]);
        let expected = if sym.is_empty() { 3 } else { 2 };
        assert_eq!(out.lines().count(), expected, "{out}");
    }
}

/// N-D weights whose MatMul needs its rank back (A of lower or unknown rank) keep their dims in
/// the DequantizeLinear (blocked along axis r-2), so the output has the float model's shape with
/// no reshape chain (ORT's tool adds one; so there is no parity to check, only correctness).
#[test]
fn nd_weights_keep_their_rank() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, listing) = run_py(
        "make_weight_only_models.py",
        &[dir.path().as_os_str(), "--reshape".as_ref()],
    );
    assert!(ok, "{listing}");
    for case in listing.lines() {
        let model = dir.path().join(format!("{case}.onnx"));
        let out = dir.path().join(format!("{case}-q.onnx"));
        let summary = quantize(
            &model,
            &out,
            &[
                "--mode",
                "weight-only",
                "--format",
                "qdq",
                "--block-size",
                "16",
            ],
        );
        assert!(
            summary.contains("DequantizeLinear 4-bit + MatMul"),
            "{case}: {summary}"
        );
        let text = compare(&model, &out, None, &["--min-cosine", "0.95"]);
        assert!(text.contains("checker: ok"), "{case}: {text}");
    }
}

/// RTN and k-quant in the QDQ format write their MatMulNBits blocks re-laid out: every weight
/// dequantizes to exactly what the QOperator model's does (the same reconstruction error, to the
/// last bit), and the model runs close to the float one (minilm-l6-v2: three blocks along K, where
/// ORT's tool crashes).
#[test]
fn rtn_and_k_quant_in_qdq() {
    let dir = tempfile::tempdir().unwrap();
    let model = corpus_model("minilm-l6-v2");
    for algo in [
        &["--algo", "rtn"][..],
        &["--algo", "rtn", "--symmetric", "--bits", "8"],
        &["--algo", "k-quant", "--block-size", "32"],
    ] {
        let (qop, qdq) = (dir.path().join("qop.onnx"), dir.path().join("qdq.onnx"));
        for p in [&qop, &qdq] {
            let _ = std::fs::remove_file(p);
        }
        let mut flags = vec!["--mode", "weight-only"];
        flags.extend(algo);
        quantize(&model, &qop, &flags);
        flags.extend(["--format", "qdq"]);
        quantize(&model, &qdq, &flags);
        let errors = |q: &Path| {
            let (ok, json) = run_py("weight_error.py", &[model.as_os_str(), q.as_os_str()]);
            assert!(ok, "{json}");
            json
        };
        let (a, b) = (errors(&qop), errors(&qdq));
        assert!(a.len() > 2 && a == b, "{algo:?}: QOperator {a}\nQDQ {b}");
        let feeds = corpus_feeds("minilm-l6-v2");
        let text = compare(
            &model,
            &qdq,
            None,
            &["--feeds", feeds.to_str().unwrap(), "--min-cosine", "0.93"],
        );
        assert!(text.contains("checker: ok"), "{algo:?}: {text}");
    }
}

/// Settings the QDQ format cannot take, and a model with a node that cannot be converted to opset
/// 21, are refused with a hint before anything is written.
#[test]
fn qdq_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, listing) = run_py(
        "make_weight_only_models.py",
        &[dir.path().as_os_str(), "--format".as_ref(), "qdq".as_ref()],
    );
    assert!(ok, "{listing}");
    let kpad = dir.path().join("kpad.onnx");
    let bad = dir.path().join("unconvertible.onnx");
    let out = dir.path().join("out.onnx");
    let cases: &[(&Path, &[&str], &str)] = &[
        (&kpad, &["--bits", "2"], "opset 25"),
        (&kpad, &["--algo", "hqq"], "float"),
        (&kpad, &["--accuracy-level", "4"], "MatMulNBits attribute"),
        (
            &bad,
            &[],
            "node `gn` (GroupNormalization) cannot be converted",
        ),
    ];
    for (model, flags, needle) in cases {
        let mut all = vec!["--mode", "weight-only", "--format", "qdq"];
        all.extend(flags.iter().copied());
        let stderr = refused(model, &out, &all);
        assert!(stderr.contains(needle), "{flags:?}:\n{stderr}");
    }
}
