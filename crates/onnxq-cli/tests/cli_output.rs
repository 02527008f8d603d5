//! What `onnxq quantize` prints and writes besides the quantized graph (issue #11 items 6, 7, 11):
//! a summary that reads at a glance (the engine that calibrated, only float tensors among the
//! skipped, a collapse called a collapse, warnings last, `-q` and `-v`), outputs that name onnxq
//! and the settings used and carry no constant nothing reads, and weights holding NaN or ±Inf left
//! float with a warning instead of quantized into a model whose every output is NaN. Messages are
//! insta snapshots with paths replaced by `[TMP]` and `[REPO]`.

#![expect(
    clippy::unwrap_used,
    reason = "tests: a panic is the test failure we want"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use onnxq_proto as pb;
use onnxq_testkit::{corpus_dir, corpus_model, repo_root};
use prost::Message;

struct Run {
    ok: bool,
    stderr: String,
}

fn demo() -> (PathBuf, PathBuf) {
    let d = repo_root().join("examples/demo");
    (d.join("model.onnx"), d.join("calib.npz"))
}

fn fixture_ranges(name: &str) -> String {
    let p = repo_root().join(format!("tests/fixtures/ranges/{name}.json"));
    p.to_str().unwrap().to_owned()
}

/// `onnxq ARGS` (the tract engine only: no ONNX Runtime library), stderr with `dir` and the
/// repository replaced.
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

/// `onnxq quantize MODEL -o OUT FLAGS`, which must succeed.
fn quantize(dir: &Path, model: &Path, out: &Path, flags: &[&str]) -> String {
    let mut args = vec![
        "quantize",
        model.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(flags);
    let r = onnxq(dir, &args);
    assert!(r.ok, "quantize {flags:?} failed:\n{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    r.stderr
}

fn read_model(p: &Path) -> pb::ModelProto {
    pb::ModelProto::decode(std::fs::read(p).unwrap().as_slice()).unwrap()
}

/// The initializers and Constant-node outputs of the main graph that no node, subgraph or graph
/// output reads.
fn unread_constants(m: &pb::ModelProto) -> Vec<String> {
    fn reads(g: &pb::GraphProto, into: &mut BTreeSet<String>) {
        for n in &g.node {
            into.extend(n.input.iter().cloned());
            for a in &n.attribute {
                for sub in a.g.iter().chain(&a.graphs) {
                    reads(sub, into);
                }
            }
        }
        into.extend(g.output.iter().map(|o| o.name().to_owned()));
    }
    let g = m.graph.as_ref().unwrap();
    let mut read = BTreeSet::new();
    reads(g, &mut read);
    let constants = g
        .node
        .iter()
        .filter(|n| n.op_type() == "Constant")
        .flat_map(|n| n.output.iter().cloned());
    g.initializer
        .iter()
        .map(|t| t.name().to_owned())
        .chain(constants)
        .filter(|n| !read.contains(n))
        .collect()
}

#[test]
fn summary_names_the_engine_and_prints_warnings_last() {
    let dir = tempfile::tempdir().unwrap();
    let (model, data) = demo();
    let out = dir.path().join("out.onnx");
    let data = data.to_str().unwrap();
    let text = quantize(
        dir.path(),
        &model,
        &out,
        &["--data", data, "--engine", "tract"],
    );
    assert!(text.contains("calibrated by tract-onnx"), "{text}");
    insta::assert_snapshot!("static_demo", text);
    // From a ranges file, the summary says the file's engine calibrated.
    let ranges = dir.path().join("ranges.json");
    let r = onnxq(
        dir.path(),
        &[
            "calibrate",
            model.to_str().unwrap(),
            "--data",
            data,
            "--engine",
            "tract",
            "-o",
            ranges.to_str().unwrap(),
        ],
    );
    assert!(r.ok, "{}", r.stderr);
    let text = quantize(
        dir.path(),
        &model,
        &out,
        &["--ranges", ranges.to_str().unwrap()],
    );
    assert!(
        text.contains("ranges from --ranges, calibrated by tract-onnx"),
        "{text}"
    );
    // A collapse is called one, after the counts, at the very end.
    let out = dir.path().join("ppocr.onnx");
    let text = quantize(
        dir.path(),
        &corpus_model("ppocr-rec"),
        &out,
        &["--mode", "dynamic"],
    );
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with("warning: ") && last.contains("will likely ruin accuracy"),
        "{text}"
    );
    insta::assert_snapshot!("dynamic_ppocr_collapse", text);
}

#[test]
fn quiet_prints_only_warnings_and_verbose_names_every_skipped_node() {
    let dir = tempfile::tempdir().unwrap();
    let (model, _) = demo();
    let out = dir.path().join("out.onnx");
    let quiet = quantize(dir.path(), &model, &out, &["--mode", "dynamic", "-q"]);
    assert_eq!(quiet, "", "-q printed more than warnings");
    let ppocr = corpus_model("ppocr-rec");
    let quiet = quantize(dir.path(), &ppocr, &out, &["-q", "--mode", "dynamic"]);
    assert!(
        !quiet.is_empty() && quiet.lines().all(|l| l.starts_with("warning: ")),
        "{quiet}"
    );
    // minilm's static summary has more than three skipped nodes of one reason.
    let minilm = corpus_model("minilm-l6-v2");
    let ranges = fixture_ranges("minilm-l6-v2");
    let flags = ["--mode", "static", "--ranges", ranges.as_str()];
    let normal = quantize(dir.path(), &minilm, &out, &flags);
    assert!(normal.contains("-v names them all"), "{normal}");
    let mut verbose_flags = flags.to_vec();
    verbose_flags.push("-v");
    let verbose = quantize(dir.path(), &minilm, &out, &verbose_flags);
    assert!(!verbose.contains("in all;"), "{verbose}");
    assert!(verbose.len() > normal.len());
    let r = onnxq(
        dir.path(),
        &["-q", "-v", "inspect", model.to_str().unwrap()],
    );
    assert!(!r.ok, "-q with -v was accepted");
}

#[test]
fn skipped_lists_only_float_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.onnx");
    let report = dir.path().join("report.json");
    for (name, mode) in [
        ("minilm-l6-v2", "static"),
        ("bytegpt", "static"),
        ("minilm-l6-v2", "dynamic"),
    ] {
        let ranges = fixture_ranges(name);
        let mut flags = vec!["--mode", mode, "--report", report.to_str().unwrap()];
        if mode == "static" {
            flags.extend(["--ranges", ranges.as_str()]);
        }
        let text = quantize(dir.path(), &corpus_model(name), &out, &flags);
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        // The shape arithmetic of these exports: Shape → Gather/Unsqueeze/Concat → Reshape.
        let shape_ops: Vec<&str> = r["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["status"] == "skipped")
            .filter_map(|e| e["node"].as_str())
            .filter(|n| {
                n.contains("Shape")
                    || n.contains("Unsqueeze")
                    || n.contains("Concat") && !n.contains("attention")
            })
            .collect();
        assert!(shape_ops.is_empty(), "{name} {mode}: {shape_ops:?}\n{text}");
    }
}

#[test]
fn outputs_name_onnxq_and_the_settings_used() {
    let dir = tempfile::tempdir().unwrap();
    let (model, data) = demo();
    // The input's own metadata is kept (the IR round-trips metadata_props).
    let mut m = read_model(&model);
    m.metadata_props.push(pb::StringStringEntryProto {
        key: Some("author".into()),
        value: Some("someone".into()),
    });
    let input = dir.path().join("in.onnx");
    std::fs::write(&input, m.encode_to_vec()).unwrap();
    let data = data.to_str().unwrap();
    let mut all = String::new();
    for flags in [
        vec!["--mode", "dynamic"],
        vec!["--data", data, "--engine", "tract", "--per-channel"],
        vec!["--data", data, "--engine", "tract", "--format", "qoperator"],
    ] {
        let a = dir.path().join("a.onnx");
        let b = dir.path().join("sub/b.onnx");
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        quantize(dir.path(), &input, &a, &flags);
        quantize(dir.path(), &input, &b, &flags);
        assert_eq!(
            std::fs::read(&a).unwrap(),
            std::fs::read(&b).unwrap(),
            "{flags:?}: the output depends on its path"
        );
        let q = read_model(&a);
        assert_eq!(q.producer_name(), "onnxq");
        assert_eq!(q.producer_version(), env!("CARGO_PKG_VERSION"));
        let meta: Vec<(&str, &str)> = q
            .metadata_props
            .iter()
            .map(|e| (e.key(), e.value()))
            .collect();
        assert!(meta.contains(&("author", "someone")), "{meta:?}");
        let settings = meta
            .iter()
            .find(|(k, _)| *k == "onnxq.settings")
            .unwrap_or_else(|| panic!("no onnxq.settings in {meta:?}"))
            .1;
        assert!(!settings.contains(dir.path().to_str().unwrap()));
        let v: serde_json::Value = serde_json::from_str(settings).unwrap();
        all += &format!(
            "$ {}\n{}\n",
            flags.join(" ").replace(data, "[DATA]"),
            serde_json::to_string_pretty(&v).unwrap()
        );
    }
    insta::assert_snapshot!("settings", all);
}

#[test]
fn outputs_carry_no_unread_constants() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.onnx");
    let (demo_model, data) = demo();
    let data = data.to_str().unwrap();
    let mobilenet = corpus_model("mobilenetv2");
    let ranges = fixture_ranges("mobilenetv2");
    let cases: Vec<(&Path, Vec<&str>)> = vec![
        (&demo_model, vec!["--mode", "dynamic"]),
        (&demo_model, vec!["--data", data, "--engine", "tract"]),
        (&mobilenet, vec!["--mode", "dynamic", "--conv-per-channel"]),
        (&mobilenet, vec!["--ranges", &ranges]),
        (&mobilenet, vec!["--ranges", &ranges, "--per-channel"]),
        (
            &mobilenet,
            vec!["--ranges", &ranges, "--format", "qoperator"],
        ),
    ];
    for (model, flags) in cases {
        quantize(dir.path(), model, &out, &flags);
        let unread = unread_constants(&read_model(&out));
        assert!(
            unread.is_empty(),
            "{} {flags:?}: {} unread constants, e.g. {:?}",
            model.display(),
            unread.len(),
            &unread[..unread.len().min(5)]
        );
    }
}

/// The demo model with NaN and +Inf written into its largest float initializer and -Inf into
/// `fc1.bias`; returns the model and the initializer's name.
fn broken_demo(dir: &Path) -> (PathBuf, String) {
    let mut m = read_model(&demo().0);
    let g = m.graph.as_mut().unwrap();
    let t = g
        .initializer
        .iter_mut()
        .filter(|t| t.data_type() == 1 && t.raw_data.as_ref().is_some_and(|r| r.len() >= 8))
        .max_by_key(|t| t.raw_data.as_ref().map_or(0, |r| r.len()))
        .unwrap();
    let mut raw = t.raw_data.clone().unwrap().to_vec();
    raw[0..4].copy_from_slice(&f32::INFINITY.to_le_bytes());
    raw[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
    t.raw_data = Some(raw.into());
    let name = t.name().to_owned();
    // A bias too: static quantization stores it as int32 with its weight's scale, and its values
    // also enlarge that scale (ORT's weight-scale adjustment).
    let b = g
        .initializer
        .iter_mut()
        .find(|t| t.name() == "fc1.bias")
        .unwrap();
    let mut raw = b.raw_data.clone().unwrap().to_vec();
    raw[0..4].copy_from_slice(&f32::NEG_INFINITY.to_le_bytes());
    b.raw_data = Some(raw.into());
    let p = dir.join("broken.onnx");
    std::fs::write(&p, m.encode_to_vec()).unwrap();
    (p, name)
}

/// Every scale initializer of `m` holds finite values.
fn scales_are_finite(m: &pb::ModelProto) -> bool {
    m.graph
        .as_ref()
        .unwrap()
        .initializer
        .iter()
        .filter(|t| t.name().ends_with("_scale") && t.data_type() == 1)
        .all(|t| {
            let raw = t
                .raw_data
                .as_deref()
                .map(<[u8]>::to_vec)
                .unwrap_or_else(|| t.float_data.iter().flat_map(|f| f.to_le_bytes()).collect());
            raw.chunks(4)
                .all(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite())
        })
}

#[test]
fn nonfinite_weights_stay_float_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let (model, weight) = broken_demo(dir.path());
    let out = dir.path().join("out.onnx");
    let (_, data) = demo();
    // Static from the float demo's ranges: calibrating the broken model would give NaN ranges.
    // They are another model's (its weights differ), so they are reused deliberately.
    let ranges = dir.path().join("ranges.json");
    let r = onnxq(
        dir.path(),
        &[
            "calibrate",
            demo().0.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--engine",
            "tract",
            "-o",
            ranges.to_str().unwrap(),
        ],
    );
    assert!(r.ok, "{}", r.stderr);
    let mut all = String::new();
    for flags in [
        vec!["--mode", "dynamic"],
        vec!["--mode", "dynamic", "--per-channel"],
        vec!["--ranges", ranges.to_str().unwrap(), "--force-ranges"],
        vec![
            "--ranges",
            ranges.to_str().unwrap(),
            "--force-ranges",
            "--per-channel",
        ],
        vec![
            "--ranges",
            ranges.to_str().unwrap(),
            "--force-ranges",
            "--format",
            "qoperator",
        ],
    ] {
        let text = quantize(dir.path(), &model, &out, &flags);
        let warnings: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("warning: ") && l.contains("NaN or infinite"))
            .collect();
        // Dynamic mode leaves biases float anyway: only the weight is named there.
        let broken: &[&str] = if flags[1] == "dynamic" {
            &[&weight]
        } else {
            &[&weight, "fc1.bias"]
        };
        assert_eq!(warnings.len(), broken.len(), "{flags:?}:\n{text}");
        let q = read_model(&out);
        assert!(scales_are_finite(&q), "{flags:?}: a scale is not finite");
        let g = q.graph.as_ref().unwrap();
        for name in broken {
            assert!(
                warnings.iter().any(|w| w.contains(&format!("`{name}`"))),
                "{flags:?}: `{name}` not named:\n{text}"
            );
            assert!(
                g.initializer
                    .iter()
                    .any(|t| t.name() == *name && t.data_type() == 1),
                "{flags:?}: `{name}` is no longer float"
            );
            assert!(
                g.node.iter().any(|n| n.input.iter().any(|i| i == name)),
                "{flags:?}: nothing reads `{name}`"
            );
        }
        all += &format!(
            "$ {}\n{}\n",
            flags
                .join(" ")
                .replace(dir.path().to_str().unwrap(), "[TMP]"),
            warnings.join("\n")
        );
    }
    insta::assert_snapshot!("nonfinite", all);
}
