//! `onnxq quantize` options: calibration inputs select static mode, an option the chosen mode does
//! not use is an error naming it and the mode that uses it, ORT's spellings are accepted, and every
//! error ends with a specific `hint:` (insta snapshots of the messages, paths replaced by `[TMP]`
//! and `[REPO]`). The models are the demo's (examples/demo), calibrated with the tract engine.

#![expect(
    clippy::unwrap_used,
    reason = "tests: a panic is the test failure we want"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use onnxq_testkit::repo_root;

/// The hint `report_error` prints for an error without one of its own (util::FALLBACK_HINT).
const FALLBACK: &str = "`onnxq <command> --help` lists";

struct Run {
    ok: bool,
    stderr: String,
}

fn demo() -> (PathBuf, PathBuf) {
    let d = repo_root().join("examples/demo");
    (d.join("model.onnx"), d.join("calib.npz"))
}

/// `onnxq quantize <demo> -o <dir>/out.onnx ARGS` with `{data}` in ARGS replaced by the demo's
/// samples and `{dir}` by the temp folder; stderr with those paths replaced.
fn quantize(dir: &Path, args: &[&str]) -> Run {
    let (model, data) = demo();
    let out = dir.join("out.onnx");
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            a.replace("{data}", data.to_str().unwrap())
                .replace("{dir}", dir.to_str().unwrap())
        })
        .collect();
    let o = Command::new(env!("CARGO_BIN_EXE_onnxq"))
        .arg("quantize")
        .arg(&model)
        .arg("-o")
        .arg(&out)
        .args(&args)
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr)
        .replace(dir.to_str().unwrap(), "[TMP]")
        .replace(repo_root().to_str().unwrap(), "[REPO]");
    Run {
        ok: o.status.success(),
        stderr,
    }
}

/// Each case must fail, print nothing in place of a hint and write no model; returns the
/// messages, one block per case, for a snapshot.
fn refused(dir: &Path, cases: &[&[&str]]) -> String {
    let mut all = String::new();
    for args in cases {
        let r = quantize(dir, args);
        assert!(!r.ok, "{args:?} succeeded:\n{}", r.stderr);
        assert!(
            r.stderr.contains("\nhint: "),
            "{args:?}: no hint:\n{}",
            r.stderr
        );
        assert!(
            !r.stderr.contains(FALLBACK),
            "{args:?}: generic hint:\n{}",
            r.stderr
        );
        assert!(!r.stderr.contains("panicked"), "{args:?}:\n{}", r.stderr);
        assert!(!dir.join("out.onnx").exists(), "{args:?}: wrote a model");
        let shown = args.join(" ").replace(dir.to_str().unwrap(), "[TMP]");
        all += &format!("$ {shown}\n{}\n", r.stderr);
    }
    all
}

fn config(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

fn has_op(model: &Path, op: &str) -> bool {
    let bytes = std::fs::read(model).unwrap();
    bytes.windows(op.len()).any(|w| w == op.as_bytes())
}

/// `--data` without `--mode` writes a static (QDQ) model, and says so.
#[test]
fn calibration_data_selects_static_mode() {
    let dir = tempfile::tempdir().unwrap();
    let r = quantize(dir.path(), &["--data", "{data}", "--engine", "tract"]);
    assert!(r.ok, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("static quantization: --data was given and no --mode"),
        "{}",
        r.stderr
    );
    let out = dir.path().join("out.onnx");
    assert!(has_op(&out, "QuantizeLinear") && !has_op(&out, "MatMulInteger"));
}

/// Every option that the chosen mode does not use is refused, naming it and the mode using it.
#[test]
fn options_of_the_other_mode_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mode_static = config(
        d,
        "static.toml",
        "mode = \"static\"\nenable_subgraph = true\n",
    );
    let extra_dyn = config(d, "extra.toml", "[extra_options]\nEnableSubgraph = true\n");
    let calib_key = config(d, "calib.toml", "calibrate_method = \"Entropy\"\n");
    let text = refused(
        d,
        &[
            &["--format", "qoperator"],
            &["--method", "entropy"],
            &["--engine", "tract"],
            &["--threads", "4"],
            &["--extra", "ActivationSymmetric=true"],
            &["--activation-type", "uint8"],
            &["--mode", "dynamic", "--data", "{data}"],
            &["--data", "{data}", "--conv-per-channel", "--dynamic-b"],
            &["--ranges", "{dir}/r.json", "--method", "entropy"],
            &["--config", &mode_static, "--data", "{data}"],
            &["--config", &extra_dyn, "--data", "{data}"],
            &["--config", &calib_key],
            &["--mode", "static"],
        ],
    );
    insta::assert_snapshot!(text);
}

/// ORT's enum names and Python booleans work, case-insensitively, on the command line, in the
/// config and in `--extra`, and give the same model as onnxq's spellings.
#[test]
fn ort_spellings_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out.onnx");
    let ours = &[
        "--mode",
        "static",
        "--data",
        "{data}",
        "--engine",
        "tract",
        "--weight-type",
        "int8",
        "--activation-type",
        "uint8",
        "--method",
        "minmax",
        "--format",
        "qdq",
        "--extra",
        "ActivationSymmetric=true",
    ];
    let r = quantize(d, ours);
    assert!(r.ok, "{}", r.stderr);
    let want = std::fs::read(&out).unwrap();
    let cfg = config(
        d,
        "ort.toml",
        "quant_format = \"QDQ\"\nweight_type = \"QInt8\"\nactivation_type = \"QUInt8\"\n\
         calibrate_method = \"MinMax\"\n[extra_options]\nActivationSymmetric = \"True\"\n",
    );
    let spellings: &[&[&str]] = &[
        &[
            "--data",
            "{data}",
            "--engine",
            "Tract",
            "--weight-type",
            "QInt8",
            "--activation-type",
            "QUInt8",
            "--method",
            "MinMax",
            "--format",
            "QDQ",
            "--extra",
            "ActivationSymmetric=True",
        ],
        &[
            "--data",
            "{data}",
            "--engine",
            "tract",
            "--activation-type",
            "quint8",
            "--extra",
            "ActivationSymmetric=1",
        ],
        &["--data", "{data}", "--engine", "tract", "--config", &cfg],
    ];
    for args in spellings {
        std::fs::remove_file(&out).unwrap();
        let r = quantize(d, args);
        assert!(r.ok, "{args:?}: {}", r.stderr);
        assert!(
            std::fs::read(&out).unwrap() == want,
            "{args:?}: another model"
        );
    }
}

/// ORT options onnxq does not support yet say so with what to do; typos get "did you mean";
/// config and `--extra` errors name the key, the value and the line.
#[test]
fn unsupported_options_typos_and_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let typo = config(
        d,
        "typo.toml",
        "weight_type = \"int8\"\nper_chanel = true\n",
    );
    let value = config(d, "value.toml", "# types\nweight_type = \"qint9\"\n");
    let extra = config(
        d,
        "extra.toml",
        "per_channel = true\n\n[extra_options]\nActivationSymmetric = \"maybe\"\n",
    );
    let misplaced = config(d, "misplaced.toml", "DedicatedQDQPair = true\n");
    let syntax = config(d, "syntax.toml", "per_channel = True\n");
    let text = refused(
        d,
        &[
            &["--data", "{data}", "--extra", "AddQDQPairToWeight=1"],
            &[
                "--data",
                "{data}",
                "--extra",
                "QDQOpTypePerChannelSupportToAxis={MatMul=1}",
            ],
            &["--data", "{data}", "--extra", "ActivationSymetric=1"],
            &["--data", "{data}", "--extra", "ActivationSymmetric=maybe"],
            &["--extra", "MatMulConstBOnly"],
            &["--config", &typo],
            &["--config", &value],
            &["--config", &extra, "--data", "{data}"],
            &["--config", &misplaced],
            &["--config", &syntax],
            &["--weight-type", "int4"],
            &["--weight-type", "QFLOAT8E4M3FN"],
        ],
    );
    insta::assert_snapshot!(text);
}

/// `--op-types`: a misspelled type, one the model lacks, one the mode cannot quantize are errors;
/// ORT's whole default list is a one-line note.
#[test]
fn op_types_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = refused(
        d,
        &[
            &["--op-types", "Conv,Gem"],
            &["--op-types", "LSTM"],
            &["--op-types", "Relu"],
            &[
                "--data",
                "{data}",
                "--engine",
                "tract",
                "--op-types",
                "Conv,Sofmax",
            ],
        ],
    );
    insta::assert_snapshot!(text);
    let ort = "Conv,MatMul,Attention,LSTM,Gather,Transpose,EmbedLayerNormalization";
    let r = quantize(d, &["--op-types", ort]);
    assert!(r.ok, "{}", r.stderr);
    let line = r.stderr.lines().find(|l| l.contains("--op-types")).unwrap();
    insta::assert_snapshot!(line);
}

/// The config takes the options the command line takes: data, engine, method, num_bins, threads,
/// report, per_channel; relative paths are read from the config's folder.
#[test]
fn config_takes_every_option() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, data) = demo();
    std::fs::copy(&data, d.join("calib.npz")).unwrap();
    let cfg = config(
        d,
        "all.toml",
        "data = \"calib.npz\"\nengine = \"tract\"\nmethod = \"percentile\"\nnum_bins = 512\n\
         percentile = 99.9\nthreads = 1\nreport = \"report.json\"\nper_channel = true\n",
    );
    let r = quantize(d, &["--config", &cfg]);
    assert!(r.ok, "{}", r.stderr);
    assert!(r.stderr.contains("static quantization"), "{}", r.stderr);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("report.json")).unwrap()).unwrap();
    assert!(report["nodes"].as_array().is_some_and(|n| !n.is_empty()));
    // A flag wins over the config: --threads 2 and --method minmax are used, and the model is the
    // one the same flags give without a config.
    let out = d.join("out.onnx");
    let flags = ["--engine", "tract", "--method", "minmax", "--per-channel"];
    let mut with_cfg = vec!["--config", cfg.as_str()];
    with_cfg.extend(["--method", "minmax"]);
    assert!(quantize(d, &with_cfg).ok);
    let a = std::fs::read(&out).unwrap();
    let mut plain = vec!["--data", "{data}"];
    plain.extend(flags);
    assert!(quantize(d, &plain).ok);
    assert!(std::fs::read(&out).unwrap() == a, "the flag did not win");
}

/// Errors that had no hint before: static without ranges, dynamic int4, the data errors, an
/// option of another mode, a bad overrides file.
#[test]
fn every_error_has_a_specific_hint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("bad.json"), "{not json").unwrap();
    refused(
        d,
        &[
            &["--mode", "static"],
            &["--weight-type", "uint4"],
            &["--dynamic-b", "--data", "{data}"],
            &["--data", "{data}", "--overrides", "{dir}/bad.json"],
            &["--data", "{data}", "--overrides", "{dir}/missing.json"],
            &["--config", "{dir}/missing.toml"],
            &["--data", "{data}", "--activation-type", "int4"],
            &["--data", "{data}", "--weight-type", "uint8"],
        ],
    );
}

/// A calibration setting the chosen method does not read is refused, from a flag, a config key or
/// an extra option, in `quantize --data` and in `calibrate` alike.
#[test]
fn settings_the_method_ignores_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = config(d, "p.toml", "percentile = 99.0\n");
    let mut text = refused(
        d,
        &[
            &["--data", "{data}", "--percentile", "99.9"],
            &[
                "--data",
                "{data}",
                "--method",
                "percentile",
                "--num-quantized-bins",
                "64",
            ],
            &[
                "--data",
                "{data}",
                "--method",
                "entropy",
                "--moving-average",
            ],
            &[
                "--data",
                "{data}",
                "--method",
                "distribution",
                "--symmetric",
            ],
            &["--data", "{data}", "--num-bins", "512"],
            &["--data", "{data}", "--config", &key],
            &[
                "--data",
                "{data}",
                "--method",
                "entropy",
                "--extra",
                "CalibMovingAverage=1",
            ],
        ],
    );
    // The settings a method reads are taken.
    let ok = quantize(
        d,
        &[
            "--data",
            "{data}",
            "--method",
            "percentile",
            "--percentile",
            "99.9",
            "--engine",
            "tract",
        ],
    );
    assert!(ok.ok, "{}", ok.stderr);
    std::fs::remove_file(d.join("out.onnx")).unwrap();
    // A config's settings for another method than the one --method picks are dropped with a note.
    let over = quantize(
        d,
        &[
            "--data", "{data}", "--config", &key, "--method", "minmax", "--engine", "tract",
        ],
    );
    assert!(
        over.ok
            && over
                .stderr
                .contains("`percentile` in the config is read only"),
        "{}",
        over.stderr
    );
    std::fs::remove_file(d.join("out.onnx")).unwrap();
    let (model, data) = demo();
    let o = Command::new(env!("CARGO_BIN_EXE_onnxq"))
        .arg("calibrate")
        .arg(&model)
        .args([
            "--data",
            data.to_str().unwrap(),
            "--num-quantized-bins",
            "64",
            "-o",
        ])
        .arg(d.join("r.json"))
        .output()
        .unwrap();
    assert!(!o.status.success() && !d.join("r.json").exists());
    text += &format!(
        "$ calibrate --num-quantized-bins 64\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    insta::assert_snapshot!(text);
}
