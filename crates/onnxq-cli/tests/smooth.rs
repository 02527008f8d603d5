//! `quantize --smooth-quant` on the tiny models of `tests/py/make_smooth_models.py`, each with one
//! activation channel 100x larger than the others: the rewritten float model (`--rewritten`)
//! gives the float model's outputs (SQNR ≥ 100 dB, a relative RMS error ≤ 1e-5, in ONNX
//! Runtime), the QDQ model's output SQNR rises over the plain static model's by a stated
//! margin, `1/s` goes where it can be absorbed (else into a float Mul), and no option is
//! ignored.

#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use std::path::{Path, PathBuf};

use common::{quantize, refused, sqnr};
use onnxq_testkit::{python_ok, repo_root};

/// The generated models in a fresh folder.
fn models() -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let script = repo_root().join("tests/py/make_smooth_models.py");
    let names = python_ok(&[script.as_ref(), dir.path().as_ref()]);
    (dir, names.lines().map(str::to_owned).collect())
}

/// The op types of a model's nodes, with the names of its Mul nodes.
fn ops(model: &Path) -> String {
    python_ok(&[
        "-c".as_ref(),
        "import onnx,sys; g=onnx.load(sys.argv[1]).graph; \
         print(' '.join(n.op_type for n in g.node)); \
         print(' '.join(n.name for n in g.node if n.op_type == 'Mul'))"
            .as_ref(),
        model.as_ref(),
    ])
}

struct Case {
    name: &'static str,
    /// The least SQNR gain (dB) of the smoothed QDQ model over the plain one.
    gain_db: f64,
    /// Whether `1/s` goes into an inserted Mul (else it is folded away).
    inserted_mul: bool,
}

const CASES: &[Case] = &[
    // LayerNormalization's scale and bias absorb 1/s.
    Case {
        name: "layernorm",
        gain_db: 4.0,
        inserted_mul: false,
    },
    // An exporter's LayerNorm tail: Mul by gamma, then Add of beta.
    Case {
        name: "decomposed",
        gain_db: 3.0,
        inserted_mul: false,
    },
    // Relu cannot absorb it: a float Mul is inserted before the Gemm (transB).
    Case {
        name: "relu",
        gain_db: 3.0,
        inserted_mul: true,
    },
    // Conv -> 1x1 Conv -> Relu -> depthwise Conv: folded into the first Conv; Muls for the graph
    // input and after the Relu.
    Case {
        name: "conv",
        gain_db: 1.0,
        inserted_mul: true,
    },
];

fn run(dir: &Path, name: &str, flags: &[&str]) -> (PathBuf, PathBuf, PathBuf, String) {
    let d = dir.join(name);
    let (float, feeds) = (d.join("model.onnx"), d.join("calib.npz"));
    let out = d.join(format!("sq{}.onnx", flags.len()));
    let rewritten = d.join(format!("rewritten{}.onnx", flags.len()));
    let data = feeds.to_str().unwrap();
    let mut args = vec![
        "--data",
        data,
        "--engine",
        "ort",
        "--smooth-quant",
        "--rewritten",
        rewritten.to_str().unwrap(),
        "-v",
    ];
    args.extend_from_slice(flags);
    let log = quantize(&float, &out, &args);
    (out, rewritten, feeds, log)
}

#[test]
fn smoothing_keeps_the_float_model_and_lifts_the_quantized_one() {
    let (dir, names) = models();
    for case in CASES {
        assert!(names.iter().any(|n| n == case.name), "{names:?}");
        let d = dir.path().join(case.name);
        let (float, feeds) = (d.join("model.onnx"), d.join("calib.npz"));
        let plain = d.join("plain.onnx");
        quantize(
            &float,
            &plain,
            &["--data", feeds.to_str().unwrap(), "--engine", "ort"],
        );
        let (smoothed, rewritten, feeds, log) = run(dir.path(), case.name, &[]);
        let same = sqnr(&float, &rewritten, &feeds);
        assert!(
            same >= 100.0,
            "{}: rewritten float at {same} dB\n{log}",
            case.name
        );
        let (before, after) = (
            sqnr(&float, &plain, &feeds),
            sqnr(&float, &smoothed, &feeds),
        );
        assert!(
            after >= before + case.gain_db,
            "{}: {before:.2} dB plain, {after:.2} dB smoothed (want +{})\n{log}",
            case.name,
            case.gain_db
        );
        let (ops, muls) = ops(&smoothed)
            .split_once('\n')
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .unwrap();
        assert_eq!(
            muls.contains("_smooth_mul"),
            case.inserted_mul,
            "{}: {ops}\n{log}",
            case.name
        );
        assert!(log.contains("SmoothQuant: "), "{log}");
        if case.inserted_mul {
            // The inserted Mul stays float: excluded as ORT's tool excludes it.
            assert!(log.contains("_smooth_mul: excluded by"), "{log}");
        }
    }
}

/// Without folding every smoothed activation gets a Mul; the float model is unchanged still.
#[test]
fn folding_off_inserts_muls() {
    let (dir, _) = models();
    let (smoothed, rewritten, feeds, log) = run(
        dir.path(),
        "layernorm",
        &[
            "--smooth-quant-folding",
            "false",
            "--smooth-quant-alpha",
            "0.7",
        ],
    );
    let float = dir.path().join("layernorm/model.onnx");
    assert!(sqnr(&float, &rewritten, &feeds) >= 100.0, "{log}");
    assert!(ops(&smoothed).contains("ln_smooth_mul"), "{log}");
    assert!(log.contains("folding is off"), "{log}");
}

/// ORT's extra option names work; SmoothQuant's settings without SmoothQuant, a bad alpha,
/// and --rewritten alone are refused.
#[test]
fn options_are_checked() {
    let (dir, _) = models();
    let d = dir.path().join("layernorm");
    let (float, feeds) = (d.join("model.onnx"), d.join("calib.npz"));
    let data = feeds.to_str().unwrap();
    let out = d.join("extra.onnx");
    let log = quantize(
        &float,
        &out,
        &[
            "--data",
            data,
            "--extra",
            "SmoothQuant=True",
            "--extra",
            "SmoothQuantAlpha=0.6",
        ],
    );
    assert!(log.contains("SmoothQuant: 1 activation"), "{log}");
    let bad = d.join("bad.onnx");
    let e = refused(
        &float,
        &bad,
        &["--data", data, "--smooth-quant-alpha", "0.6"],
    );
    assert!(e.contains("SmoothQuant is off"), "{e}");
    let e = refused(
        &float,
        &bad,
        &[
            "--data",
            data,
            "--smooth-quant",
            "--smooth-quant-alpha",
            "1.5",
        ],
    );
    assert!(e.contains("alpha is 1.5"), "{e}");
    let e = refused(&float, &bad, &["--data", data, "--rewritten", "r.onnx"]);
    assert!(e.contains("--rewritten"), "{e}");
    let e = refused(&float, &bad, &["--mode", "dynamic", "--smooth-quant"]);
    assert!(e.contains("smooth-quant"), "{e}");
}
