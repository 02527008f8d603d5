//! The input check against ONNX Runtime's operator schemas (`check.rs`, `schema.rs`): models ORT
//! loads give no problem (every corpus model, every model the test fixture scripts
//! `tests/py/make_*.py` write, near misses ORT accepts), a one-node model per rule that ORT was
//! seen to refuse (`tests/py/make_check_models.py` verifies each in ORT) is reported naming the
//! node, and the committed `schemas.txt` is what `scripts/gen_op_schemas.py` writes now.

#![expect(
    clippy::unwrap_used,
    reason = "tests: a panic is the test failure we want"
)]
#![expect(
    clippy::print_stderr,
    reason = "the refused fixtures are listed in the test log"
)]

use std::path::{Path, PathBuf};

use onnxq_testkit::{corpus_dir, python_ok, repo_root, run_py};

/// `check`'s problems for the model at `path`, as `node: message` lines.
fn problems(path: &Path) -> Vec<String> {
    let model = onnxq_ir::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let inf = onnxq_infer::infer(&model).unwrap();
    onnxq_infer::check(&model, &inf)
        .into_iter()
        .map(|p| format!("{}: {}", p.node, p.message))
        .collect()
}

/// Every `.onnx` file under `dir`, sorted.
fn onnx_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "onnx") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A fresh empty folder for one test, removed when dropped (onnxq-infer has no `tempfile`).
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("onnxq-infer-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What ONNX Runtime says loading each of `models`: "" when it loads, else its error.
fn ort_refusals(models: &[&PathBuf]) -> Vec<String> {
    const LOAD: &str = r#"
import sys, onnxruntime as ort
so = ort.SessionOptions()
so.log_severity_level = 4
for p in sys.argv[1:]:
    try:
        ort.InferenceSession(p, so, providers=["CPUExecutionProvider"])
        print("")
    except Exception as e:
        print(str(e).replace("\n", " ") or "refused")
"#;
    let mut args: Vec<&std::ffi::OsStr> = vec!["-c".as_ref(), LOAD.as_ref()];
    args.extend(models.iter().map(|m| m.as_os_str()));
    let out = python_ok(&args);
    let lines: Vec<String> = out.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), models.len(), "{out}");
    lines
}

/// Asserts that no model of `models` that ONNX Runtime loads has a problem (ORT is asked about
/// the ones that have); returns the models both refuse, with onnxq's problems.
fn assert_clean(models: &[PathBuf]) -> Vec<String> {
    let flagged: Vec<(&PathBuf, Vec<String>)> = models
        .iter()
        .map(|m| (m, problems(m)))
        .filter(|(_, p)| !p.is_empty())
        .collect();
    if flagged.is_empty() {
        return Vec::new();
    }
    let ort = ort_refusals(&flagged.iter().map(|(m, _)| *m).collect::<Vec<_>>());
    let (mut wrong, mut both) = (Vec::new(), Vec::new());
    for ((m, p), ort) in flagged.iter().zip(&ort) {
        let shown = format!("{}:\n  {}", m.display(), p.join("\n  "));
        if ort.is_empty() {
            wrong.push(shown);
        } else {
            both.push(format!("{shown}\n  (ONNX Runtime: {ort})"));
        }
    }
    assert!(
        wrong.is_empty(),
        "refused models ONNX Runtime loads:\n{}",
        wrong.join("\n")
    );
    both
}

#[test]
fn corpus_models_have_no_problems() {
    let models = onnx_files(&corpus_dir());
    assert!(
        models.len() >= onnxq_testkit::CORPUS.len(),
        "{models:?}: is the corpus at {}?",
        corpus_dir().display()
    );
    let refused = assert_clean(&models);
    assert!(refused.is_empty(), "corpus models refused: {refused:?}");
}

/// Every fixture generator, with each set of flags a test runs it with.
const GENERATORS: &[(&str, &[&str])] = &[
    ("make_bias_models.py", &[]),
    ("make_compare_models.py", &[]),
    ("make_contrib_models.py", &[]),
    ("make_equalize_models.py", &[]),
    ("make_gptq_models.py", &[]),
    ("make_infer_models.py", &[]),
    ("make_mixed_precision_model.py", &[]),
    ("make_preprocess_models.py", &[]),
    ("make_range_edge_models.py", &[]),
    ("make_rounding_models.py", &[]),
    ("make_smooth_models.py", &[]),
    ("make_static_op_models.py", &[]),
    ("make_static_op_models.py", &["--ort-bugs"]),
    ("make_upgrade_models.py", &[]),
    ("make_weight_only_models.py", &[]),
    ("make_weight_only_models.py", &["--reshape"]),
    ("make_weight_only_models.py", &["--format", "qdq"]),
];

#[test]
fn generated_test_models_have_no_problems() {
    let listed: Vec<String> = std::fs::read_dir(repo_root().join("tests/py"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("make_") && n.ends_with(".py") && n != "make_check_models.py")
        .collect();
    for name in &listed {
        assert!(
            GENERATORS.iter().any(|(g, _)| g == name),
            "{name}: a new fixture generator; add it to GENERATORS"
        );
    }
    let mut models = Vec::new();
    let dir = TempDir::new("generated");
    for (i, (script, flags)) in GENERATORS.iter().enumerate() {
        let out = dir.path().join(i.to_string());
        std::fs::create_dir(&out).unwrap();
        let mut args = vec![out.as_os_str()];
        args.extend(flags.iter().map(std::ffi::OsStr::new));
        let (ok, text) = run_py(script, &args);
        assert!(ok, "{script} {flags:?}: {text}");
        let found = onnx_files(&out);
        assert!(!found.is_empty(), "{script} {flags:?} wrote no model");
        models.extend(found);
    }
    // The generators write a few models ORT refuses on purpose (make_upgrade_models.py's Upsample
    // at opset 10, its deprecated version): those must be refused here too.
    let refused = assert_clean(&models);
    eprintln!(
        "{} generated models; refused by ORT and onnxq alike: {refused:#?}",
        models.len()
    );
}

#[test]
fn models_onnx_runtime_refuses_are_reported_by_node() {
    let dir = TempDir::new("refused");
    let (ok, listing) = run_py("make_check_models.py", &[dir.path().as_os_str()]);
    assert!(ok, "{listing}");
    let mut bad = 0;
    for line in listing.lines() {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let file = case["file"].as_str().unwrap();
        let found = problems(&dir.path().join(file));
        if case["kind"] == "good" {
            assert!(found.is_empty(), "{file}: ORT loads it, but {found:?}");
            continue;
        }
        bad += 1;
        let (node, expect) = (
            case["node"].as_str().unwrap(),
            case["expect"].as_str().unwrap(),
        );
        assert!(
            found
                .iter()
                .any(|p| p.starts_with(&format!("{node}: ")) && p.contains(expect)),
            "{file}: want a problem of node `{node}` saying {expect:?}, got {found:?}"
        );
    }
    assert!(bad >= 15, "{listing}");
}

#[test]
fn schema_table_is_what_the_generator_writes() {
    let script = repo_root().join("scripts/gen_op_schemas.py");
    let fresh = python_ok(&[script.as_os_str(), "-".as_ref()]);
    let committed =
        std::fs::read_to_string(repo_root().join("crates/onnxq-infer/src/schemas.txt")).unwrap();
    assert!(
        fresh == committed,
        "crates/onnxq-infer/src/schemas.txt is stale: run `.venv/bin/python scripts/gen_op_schemas.py`"
    );
}
