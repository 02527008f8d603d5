//! Calibration data and ranges files against the model they are used with (issue #11 items 2, 4,
//! 13): a ranges file is bound to the model it was calibrated on, data comes in the layouts people
//! have (`[N, 3, H, W]` for a batch-1 input, a lone `.npy`, float64), and data that does not fit
//! the model's inputs is refused before any engine runs, tract included. Messages are insta
//! snapshots with paths replaced by `[TMP]`, `[CORPUS]` and `[REPO]`. Models: the demo's
//! (`[1, 3, 16, 16]` input) and the corpus's digits-cnn (`[batch, 1, 8, 8]`), with tract.

#![expect(
    clippy::unwrap_used,
    reason = "tests: a panic is the test failure we want"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use onnxq_testkit::{corpus_dir, corpus_model, repo_root};
use prost::Message;

struct Run {
    ok: bool,
    stderr: String,
}

/// `onnxq ARGS` (ONNX Runtime hidden: `--engine auto` would pick it), stderr with paths redacted.
fn onnxq(dir: &Path, args: &[&str]) -> Run {
    let o = Command::new(env!("CARGO_BIN_EXE_onnxq"))
        .args(args)
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr)
        .replace(dir.to_str().unwrap(), "[TMP]")
        .replace(corpus_dir().to_str().unwrap(), "[CORPUS]")
        .replace(repo_root().to_str().unwrap(), "[REPO]");
    Run {
        ok: o.status.success(),
        stderr,
    }
}

fn demo() -> (PathBuf, PathBuf) {
    let d = repo_root().join("examples/demo");
    (d.join("model.onnx"), d.join("calib.npz"))
}

fn digits() -> (PathBuf, PathBuf) {
    (
        corpus_model("digits-cnn"),
        corpus_dir().join("data/digits-cnn/calib.npz"),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Each case must fail with a specific hint and no output file; the messages, one block each.
fn refused(dir: &Path, out: &Path, cases: &[Vec<&str>]) -> String {
    let mut all = String::new();
    for args in cases {
        let r = onnxq(dir, args);
        assert!(!r.ok, "{args:?} succeeded:\n{}", r.stderr);
        assert!(r.stderr.contains("\nhint: "), "{args:?}:\n{}", r.stderr);
        assert!(
            !r.stderr.contains("`onnxq <command> --help` lists"),
            "{args:?}: generic hint:\n{}",
            r.stderr
        );
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
        let shown = args[2..]
            .join(" ")
            .replace(dir.to_str().unwrap(), "[TMP]")
            .replace(corpus_dir().to_str().unwrap(), "[CORPUS]")
            .replace(repo_root().to_str().unwrap(), "[REPO]");
        all += &format!("$ onnxq {} MODEL {shown}\n{}\n", args[0], r.stderr);
    }
    all
}

/// An `.npy` file's bytes: float32 (`<f4`) or float64 (`<f8`) values of shape `dims`.
fn npy(dims: &[usize], values: &[f32], f64s: bool) -> Vec<u8> {
    let shape: Vec<String> = dims.iter().map(ToString::to_string).collect();
    let shape = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!("({})", shape.join(", ")),
    };
    let descr = if f64s { "<f8" } else { "<f4" };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((header.len() as u16).to_le_bytes());
    b.extend(header.as_bytes());
    for v in values {
        if f64s {
            b.extend(f64::from(*v).to_le_bytes());
        } else {
            b.extend(v.to_le_bytes());
        }
    }
    b
}

fn write_npz(path: &Path, arrays: &[(&str, Vec<u8>)]) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (key, bytes) in arrays {
        z.start_file(format!("{key}.npy"), opts).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
}

/// The float32 values of array `key` of an npz.
fn npz_values(path: &Path, key: &str) -> Vec<f32> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut entry = z.by_name(&format!("{key}.npy")).unwrap();
    let t = onnxq_calib::npy::read_npy(&mut entry, key).unwrap();
    match t.data {
        onnxq_engine::Data::F32(v) => v,
        other => panic!("{key}: {}", other.type_name()),
    }
}

/// The demo model with one weight changed: the same graph, other weights.
fn retrained_demo(dir: &Path) -> PathBuf {
    let bytes = std::fs::read(demo().0).unwrap();
    let mut m = onnxq_proto::ModelProto::decode(bytes.as_slice()).unwrap();
    let g = m.graph.as_mut().unwrap();
    let w = g
        .initializer
        .iter_mut()
        .find(|t| t.raw_data.as_ref().is_some_and(|r| r.len() >= 4))
        .unwrap();
    let mut raw = w.raw_data.clone().unwrap().to_vec();
    let v = f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) + 0.5;
    raw[..4].copy_from_slice(&v.to_le_bytes());
    w.raw_data = Some(raw.into());
    let p = dir.join("retrained.onnx");
    std::fs::write(&p, m.encode_to_vec()).unwrap();
    p
}

/// A ranges file from another model, or from the same graph with other weights, is refused
/// (before: quantized without a word); `--force-ranges` uses it with a note.
#[test]
fn ranges_for_another_model_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (digits_model, digits_data) = digits();
    let digits_ranges = d.join("digits.json");
    let r = onnxq(
        d,
        &[
            "calibrate",
            s(&digits_model),
            "--data",
            s(&digits_data),
            "--engine",
            "tract",
            "-o",
            s(&digits_ranges),
        ],
    );
    assert!(r.ok, "{}", r.stderr);
    let text = std::fs::read_to_string(&digits_ranges).unwrap();
    assert!(text.contains("\"version\": 2") && text.contains("\"file\": \"model.onnx\""));

    let (demo_model, demo_data) = demo();
    let demo_ranges = d.join("demo.json");
    let r = onnxq(
        d,
        &[
            "calibrate",
            s(&demo_model),
            "--data",
            s(&demo_data),
            "--engine",
            "tract",
            "-o",
            s(&demo_ranges),
        ],
    );
    assert!(r.ok, "{}", r.stderr);
    let retrained = retrained_demo(d);
    let out = d.join("out.onnx");
    let mobilenet = corpus_model("mobilenetv2");
    let messages = refused(
        d,
        &out,
        &[
            vec![
                "quantize",
                s(&mobilenet),
                "-o",
                s(&out),
                "--ranges",
                s(&digits_ranges),
            ],
            vec![
                "quantize",
                s(&retrained),
                "-o",
                s(&out),
                "--ranges",
                s(&demo_ranges),
            ],
            vec![
                "quantize",
                s(&demo_model),
                "-o",
                s(&out),
                "--data",
                s(&demo_data),
                "--force-ranges",
            ],
        ],
    );
    insta::assert_snapshot!(messages);

    let forced = onnxq(
        d,
        &[
            "quantize",
            s(&retrained),
            "-o",
            s(&out),
            "--ranges",
            s(&demo_ranges),
            "--force-ranges",
        ],
    );
    assert!(forced.ok, "{}", forced.stderr);
    assert!(
        forced
            .stderr
            .contains("--force-ranges: ranges `[TMP]/demo.json` were calibrated on another model than `[TMP]/retrained.onnx`"),
        "{}",
        forced.stderr
    );
}

/// A file without a fingerprint (written by onnxq before version 2, like the committed fixtures)
/// is read with a note and checked by coverage: missing ranges of tensors the quantization
/// reads are an error naming how many and the first ones (before: quantized, those left float).
#[test]
fn version_1_files_are_checked_by_coverage() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (model, _) = digits();
    // The committed fixture as a version 1 file, whether or not it was regenerated since.
    let fixture = repo_root().join("tests/fixtures/ranges/digits-cnn.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&fixture).unwrap()).unwrap();
    json["version"] = 1.into();
    json.as_object_mut().unwrap().remove("model");
    let v1 = d.join("v1.json");
    std::fs::write(&v1, serde_json::to_string(&json).unwrap()).unwrap();
    let out = d.join("out.onnx");
    let r = onnxq(
        d,
        &["quantize", s(&model), "-o", s(&out), "--ranges", s(&v1)],
    );
    assert!(r.ok, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("(version 1, from an earlier onnxq) do not say which model"),
        "{}",
        r.stderr
    );
    std::fs::remove_file(&out).unwrap();

    let tensors = json["tensors"].as_object_mut().unwrap();
    let drop: Vec<String> = tensors
        .keys()
        .filter(|k| k.starts_with("relu") || k.starts_with("getitem") || *k == "linear")
        .cloned()
        .collect();
    assert!(drop.len() > 3, "{drop:?}");
    for k in &drop {
        tensors.remove(k);
    }
    let partial = d.join("partial.json");
    std::fs::write(&partial, serde_json::to_string(&json).unwrap()).unwrap();
    let messages = refused(
        d,
        &out,
        &[vec![
            "quantize",
            s(&model),
            "-o",
            s(&out),
            "--ranges",
            s(&partial),
        ]],
    );
    insta::assert_snapshot!(messages);
}

/// `[N, 3, 16, 16]` for the demo's `[1, 3, 16, 16]` input, a lone `.npy` (either layout) and
/// float64 data give the model the documented `[N, 1, 3, 16, 16]` float32 npz gives (before: all
/// refused).
#[test]
fn data_in_the_shapes_people_have() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (model, data) = demo();
    let values = npz_values(&data, "image");
    let n = values.len() / (3 * 16 * 16);
    let quantize = |data: &Path| {
        let out = d.join("out.onnx");
        let r = onnxq(
            d,
            &[
                "quantize",
                s(&model),
                "-o",
                s(&out),
                "--data",
                s(data),
                "--engine",
                "tract",
            ],
        );
        assert!(r.ok, "{}: {}", data.display(), r.stderr);
        let bytes = std::fs::read(&out).unwrap();
        std::fs::remove_file(&out).unwrap();
        (bytes, r.stderr)
    };
    let (want, _) = quantize(&data);
    let flat = d.join("flat.npz");
    write_npz(&flat, &[("image", npy(&[n, 3, 16, 16], &values, false))]);
    let lone = d.join("lone.npy");
    std::fs::write(&lone, npy(&[n, 1, 3, 16, 16], &values, false)).unwrap();
    let lone_flat = d.join("lone_flat.npy");
    std::fs::write(&lone_flat, npy(&[n, 3, 16, 16], &values, false)).unwrap();
    for p in [&flat, &lone, &lone_flat] {
        assert!(quantize(p).0 == want, "{} gives another model", p.display());
    }
    let doubles = d.join("f64.npz");
    write_npz(
        &doubles,
        &[("image", npy(&[n, 1, 3, 16, 16], &values, true))],
    );
    let (got, stderr) = quantize(&doubles);
    assert!(got == want, "float64 data gives another model");
    assert!(
        stderr.contains(
            "calibration data for model input `image` is float64 (first in `[TMP]/f64.npz`, \
             every sample, array `image`): cast to float32"
        ),
        "{stderr}"
    );
}

/// Samples that do not fit the model's input are refused by tract as by ONNX Runtime, before
/// the engine runs, naming the file, the array and the sample, with the layout wanted (before:
/// tract calibrated them and wrote a model).
#[test]
fn data_that_does_not_fit_is_refused_by_every_engine() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (model, _) = digits();
    let out = d.join("out.onnx");
    let ranges = d.join("r.json");
    let ones = |n: usize| vec![0.5f32; n];
    let nine = d.join("nine.npz");
    write_npz(
        &nine,
        &[("input", npy(&[4, 1, 1, 9, 9], &ones(4 * 81), false))],
    );
    let rank = d.join("rank.npz");
    write_npz(&rank, &[("input", npy(&[4, 8, 8], &ones(4 * 64), false))]);
    let mixed = d.join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    std::fs::write(mixed.join("a.npy"), npy(&[1, 1, 8, 8], &ones(64), false)).unwrap();
    std::fs::write(mixed.join("b.npy"), npy(&[1, 1, 9, 9], &ones(81), false)).unwrap();
    let ints = d.join("ints.npz");
    let mut int_bytes = npy(&[2, 1, 1, 8, 8], &ones(128), false);
    // The same layout with int32 elements: only the type string differs.
    let at = int_bytes.windows(3).position(|w| w == b"<f4").unwrap();
    int_bytes[at..at + 3].copy_from_slice(b"<i4");
    write_npz(&ints, &[("input", int_bytes)]);
    let (model_s, out_s) = (s(&model), s(&out));
    let mut cases: Vec<Vec<&str>> = [&nine, &rank, &mixed, &ints]
        .iter()
        .map(|p| {
            vec![
                "quantize",
                model_s,
                "-o",
                out_s,
                "--data",
                s(p),
                "--engine",
                "tract",
            ]
        })
        .collect();
    cases.push(vec![
        "calibrate",
        s(&model),
        "--data",
        s(&nine),
        "--engine",
        "tract",
        "-o",
        s(&ranges),
    ]);
    let messages = refused(d, &out, &cases);
    assert!(!ranges.exists());
    insta::assert_snapshot!(messages);
}
