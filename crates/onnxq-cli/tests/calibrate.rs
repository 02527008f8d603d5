//! `onnxq calibrate` against ONNX Runtime 1.31.1's calibrator (`create_calibrator`) on the corpus:
//! MinMax ranges must be bit-identical in float32; bad calibration data gets clear errors.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a panic is the test failure we want"
)]

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use onnxq_testkit::{CORPUS, corpus_feeds, corpus_model, python, python_ok, run_py};

/// Runs `onnxq calibrate`, finding ONNX Runtime through the oracle's Python; returns (ok, stderr).
fn calibrate(model: &Path, data: &[&Path], out: &Path, flags: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_onnxq"));
    cmd.arg("calibrate")
        .arg(model)
        .arg("--data")
        .args(data)
        .arg("-o")
        .arg(out)
        .args(flags);
    let o = cmd
        .env("ONNXQ_PYTHON", python())
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ours(path: &Path) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(v["format"], "onnxq-ranges");
    v["tensors"].clone()
}

/// A JSON number or "inf"/"-inf" string as float32.
fn f32_of(v: &serde_json::Value) -> f32 {
    match v {
        serde_json::Value::String(s) if s == "-inf" => f32::NEG_INFINITY,
        serde_json::Value::String(s) if s == "inf" => f32::INFINITY,
        v => v.as_f64().unwrap() as f32,
    }
}

fn assert_matches_ort(name: &str, flags: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (model, feeds) = (corpus_model(name), corpus_feeds(name));
    let out = dir.path().join("ranges.json");
    let (ok, stderr) = calibrate(&model, &[&feeds], &out, flags);
    assert!(ok, "{name}: {stderr}");
    let reference = dir.path().join("ort.json");
    let mut args: Vec<&OsStr> = vec![model.as_ref(), feeds.as_ref(), reference.as_ref()];
    args.extend(flags.iter().map(OsStr::new));
    let (ok, text) = run_py("ort_calibrate.py", &args);
    assert!(ok, "{text}");
    let ort: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&reference).unwrap()).unwrap();
    let ours = ours(&out);
    let ort = ort.as_object().unwrap();
    assert!(!ort.is_empty());
    for (tensor, range) in ort {
        let mine = ours
            .get(tensor)
            .unwrap_or_else(|| panic!("{name} {flags:?}: `{tensor}` was not calibrated"));
        let want = (f32_of(&range[0]), f32_of(&range[1]));
        let got = (f32_of(&mine["min"]), f32_of(&mine["max"]));
        assert!(
            want.0.to_bits() == got.0.to_bits() && want.1.to_bits() == got.1.to_bits(),
            "{name} {flags:?} `{tensor}`: ORT {want:?}, onnxq {got:?}"
        );
    }
}

/// Percentile (ORT's quantize_static defaults: 99.999 of |x|, 2048 bins), Entropy with a real KL
/// search (512 bins) and Distribution. ppocr-rec is left out: ORT's histogram calibrators need
/// about 14 GB there (every activation of every sample in memory). On it, 765 of 769 Entropy
/// thresholds match and 4 differ by KL near-ties that ORT's float32 numpy `log` decides.
#[test]
fn histogram_methods_match_ort() {
    for name in ["digits-cnn", "mobilenetv2", "silero-vad"] {
        assert_matches_ort(name, &["--method", "percentile"]);
        assert_matches_ort(name, &["--method", "entropy", "--num-bins", "512"]);
        assert_matches_ort(name, &["--method", "distribution"]);
    }
}

/// ORT's histogram calibrators crash on bytegpt's `-inf` attention mask ("range not finite");
/// onnxq calibrates every other tensor and names the skipped ones with the reason.
#[test]
fn histogram_methods_skip_infinite_tensors_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let (ok, stderr) = calibrate(
        &corpus_model("bytegpt"),
        &[&corpus_feeds("bytegpt")],
        &out,
        &["--method", "percentile"],
    );
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let skipped = v["skipped"].as_object().unwrap();
    assert!(
        !skipped.is_empty()
            && skipped
                .values()
                .all(|r| r.as_str().unwrap().contains("not finite")),
        "{skipped:?}"
    );
    assert!(v["tensors"].as_object().unwrap().len() > 100);
}

#[test]
fn minmax_matches_ort_on_the_corpus() {
    for name in CORPUS {
        assert_matches_ort(name, &[]);
    }
}

#[test]
fn minmax_options_match_ort() {
    for name in ["mobilenetv2", "bytegpt"] {
        assert_matches_ort(name, &["--symmetric"]);
        assert_matches_ort(name, &["--moving-average"]);
    }
}

/// Writes an .npz with the given arrays (Python expressions over numpy as `np`).
fn npz(path: &Path, arrays: &str) {
    let script = format!("import sys, numpy as np; np.savez(sys.argv[1], {arrays})");
    python_ok(&["-c".as_ref(), script.as_ref(), path.as_ref()]);
}

#[test]
fn bad_calibration_data() {
    let dir = tempfile::tempdir().unwrap();
    let model = corpus_model("digits-cnn");
    let out = dir.path().join("r.json");
    let cases = [
        (
            "wrong-key",
            "x=np.zeros((2, 1, 1, 8, 8), np.float32)",
            "has no array for model input `input`",
        ),
        (
            "wrong-dtype",
            "input=np.zeros((2, 1, 1, 8, 8), np.int32)",
            "array `input` is int32, model input `input` is float32",
        ),
        (
            "wrong-rank",
            "input=np.zeros((2, 8, 8), np.float32)",
            "has shape [2, 8, 8], which does not split into samples",
        ),
        (
            "nan",
            "input=np.where(np.arange(128).reshape(2, 1, 1, 8, 8) == 77, np.nan, 0).astype(np.float32)",
            "sample 1, array `input` contains NaN",
        ),
        (
            "empty",
            "input=np.zeros((0, 1, 1, 8, 8), np.float32)",
            "holds no samples",
        ),
    ];
    for (label, arrays, want) in cases {
        let data = dir.path().join(format!("{label}.npz"));
        npz(&data, arrays);
        let (ok, stderr) = calibrate(&model, &[&data], &out, &[]);
        // Samples stream: a bad one may come after a progress line; the error has its own line.
        let error_line = stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_default();
        assert!(!ok && error_line.contains(want), "{label}: {stderr}");
        assert!(!out.exists(), "{label}: wrote a ranges file");
    }
    let (ok, stderr) = calibrate(&model, &[&dir.path().join("missing.npz")], &out, &[]);
    assert!(!ok && stderr.contains("missing.npz"), "{stderr}");
}

/// Samples of different sequence lengths (ORT's histogram calibrators fail on them): a folder of
/// one-sample .npz files works.
#[test]
fn samples_of_different_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("samples");
    std::fs::create_dir(&data).unwrap();
    for (i, len) in [5, 9, 13].iter().enumerate() {
        let ids = format!("np.arange({len}).reshape(1, {len}) + 101");
        npz(
            &data.join(format!("s{i}.npz")),
            &format!(
                "input_ids={ids}, attention_mask=np.ones((1, {len}), np.int64), token_type_ids=np.zeros((1, {len}), np.int64)"
            ),
        );
    }
    for engine in ["ort", "tract"] {
        let out = dir.path().join("r.json");
        let (ok, stderr) = calibrate(
            &corpus_model("minilm-l6-v2"),
            &[&data],
            &out,
            &["--engine", engine],
        );
        assert!(ok, "{engine}: {stderr}");
        assert!(stderr.contains("on 3 samples"), "{engine}: {stderr}");
        assert!(ours(&out).as_object().unwrap().len() > 300, "{engine}");
    }
}

/// The embedded tract engine gives the ranges ONNX Runtime gives, within float tolerance (the two
/// engines sum in different orders): same tensors, each bound within 1e-4 of the tensor's range.
#[test]
fn both_engines_agree_on_the_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str]); 6] = [
        ("digits-cnn", &[]),
        ("mobilenetv2", &[]),
        ("minilm-l6-v2", &[]),
        ("ppocr-rec", &[]),
        ("bytegpt", &[]),
        ("digits-cnn", &["--method", "percentile"]),
    ];
    for (name, flags) in cases {
        let run = |engine: &str| {
            let out = dir.path().join(format!("{engine}.json"));
            let mut args = flags.to_vec();
            args.extend(["--engine", engine]);
            let (ok, stderr) = calibrate(&corpus_model(name), &[&corpus_feeds(name)], &out, &args);
            assert!(ok, "{name} {engine}: {stderr}");
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
            assert!(
                v["engine"]
                    .as_str()
                    .unwrap()
                    .starts_with(if engine == "ort" {
                        "onnxruntime"
                    } else {
                        "tract-onnx"
                    })
            );
            v["tensors"].as_object().unwrap().clone()
        };
        let (ort, tract) = (run("ort"), run("tract"));
        assert_eq!(
            ort.keys().collect::<Vec<_>>(),
            tract.keys().collect::<Vec<_>>(),
            "{name}"
        );
        for (tensor, a) in &ort {
            let b = &tract[tensor];
            let (lo, hi) = (f32_of(&a["min"]), f32_of(&a["max"]));
            let span = lo.abs().max(hi.abs());
            for key in ["min", "max"] {
                let (x, y) = (f32_of(&a[key]), f32_of(&b[key]));
                assert!(
                    x == y || (x - y).abs() <= 1e-4 * span + 1e-6,
                    "{name} {flags:?} `{tensor}` {key}: ORT {x}, tract {y}"
                );
            }
        }
    }
}

/// tract cannot prepare silero-vad (its shape analysis fails inside the `If` branches): one
/// sentence naming the user's model and the innermost cause, tract's whole analysis only with
/// `-v`, and a hint that says `--engine ort` where ONNX Runtime is found and how to get it where it
/// is not; no ranges file.
#[test]
fn tract_failure_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let model = corpus_model("silero-vad");
    let feeds = corpus_feeds("silero-vad");
    let (ok, stderr) = calibrate(&model, &[&feeds], &out, &["--engine", "tract"]);
    assert!(!ok && !out.exists(), "{stderr}");
    let error = stderr.lines().next().unwrap();
    assert!(
        error.contains(model.to_str().unwrap()) && error.contains("tract cannot prepare"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Infering facts"),
        "internals without -v:\n{stderr}"
    );
    assert!(
        stderr.contains(
            "hint: tract does not run every model: use `--engine ort` (ONNX Runtime is installed)"
        ),
        "{stderr}"
    );
    let (_, verbose) = calibrate(&model, &[&feeds], &out, &["--engine", "tract", "-v"]);
    assert!(
        verbose.contains("tract's analysis: ") && verbose.contains("Infering facts"),
        "{verbose}"
    );
    // Without ONNX Runtime the hint says how to get it.
    let o = Command::new(env!("CARGO_BIN_EXE_onnxq"))
        .args([
            "calibrate".as_ref(),
            model.as_os_str(),
            "--data".as_ref(),
            feeds.as_os_str(),
        ])
        .args(["--engine", "tract", "-o"])
        .arg(&out)
        .env("ONNXQ_PYTHON", dir.path().join("no-python"))
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("install ONNX Runtime (`pip install onnxruntime==1.31.1`)"),
        "{stderr}"
    );
}

/// TensorRT tables: with symmetric ranges (where ORT's `max(highest, lowest)` is the true dynamic
/// range) the cache file equals ORT's `write_calibration_table` byte for byte, and ORT's flatbuffer
/// reader reads onnxq's table.
#[test]
fn trt_tables_match_ort() {
    let dir = tempfile::tempdir().unwrap();
    let (model, feeds) = (corpus_model("digits-cnn"), corpus_feeds("digits-cnn"));
    let ours = dir.path().join("ours");
    let (ok, stderr) = calibrate(
        &model,
        &[&feeds],
        &dir.path().join("r.json"),
        &["--symmetric", "--trt-table", ours.to_str().unwrap()],
    );
    assert!(ok, "{stderr}");
    let theirs = dir.path().join("theirs");
    let theirs_json = dir.path().join("o.json");
    let args: [&OsStr; 6] = [
        model.as_ref(),
        feeds.as_ref(),
        theirs_json.as_ref(),
        "--symmetric".as_ref(),
        "--trt-table".as_ref(),
        theirs.as_ref(),
    ];
    let (ok, text) = run_py("ort_calibrate.py", &args);
    assert!(ok, "{text}");
    let read = |d: &Path| std::fs::read_to_string(d.join("calibration.cache")).unwrap();
    assert_eq!(read(&ours), read(&theirs));
    let script = "import sys\nfrom onnxruntime.quantization.CalTableFlatBuffers import TrtTable\n\
        t = TrtTable.TrtTable.GetRootAsTrtTable(open(sys.argv[1], 'rb').read(), 0)\n\
        print(''.join(sorted(f'{t.Dict(i).Key().decode()} {t.Dict(i).Value().decode()}\\n' for i in range(t.DictLength()))), end='')";
    let table = ours.join("calibration.flatbuffers");
    assert_eq!(
        python_ok(&["-c".as_ref(), script.as_ref(), table.as_ref()]),
        read(&theirs)
    );
}
