//! Weight-only settings beyond one set for the whole model: per-node settings (ORT's
//! `customized_weight_config`, in the config file), the LM head at its own bits (`--lm-head-bits`),
//! a bias Add folded into MatMulNBits (`--fold-bias`); and the spill file quantized tensors are
//! staged in, which must leave nothing behind. ONNX Runtime's `MatMulNBitsQuantizer` is the oracle
//! where it has the setting (RTN's per-node config).

#![expect(
    clippy::unwrap_used,
    reason = "tests: a panic is the test failure we want"
)]

mod common;

use std::ffi::OsStr;
use std::path::Path;

use common::{onnxq, quantize};
use onnxq_testkit::{corpus_feeds, corpus_model, run_py};

/// `quantize` with `--report`; the report's node entries as (name, outcome text).
fn quantize_reported(model: &Path, out: &Path, flags: &[&str]) -> Vec<(String, String)> {
    let report = out.with_extension("json");
    let mut all = vec![
        "--mode",
        "weight-only",
        "--report",
        report.to_str().unwrap(),
    ];
    all.extend(flags);
    quantize(model, out, &all);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["node"].as_str().unwrap().to_owned(), n.to_string()))
        .collect()
}

fn compare(float: &Path, ours: &Path, orts: Option<&Path>, extra: &[&str]) -> String {
    let orts: &OsStr = orts.map_or("-".as_ref(), |p| p.as_os_str());
    let mut args: Vec<&OsStr> = vec![float.as_ref(), ours.as_ref(), orts];
    args.extend(extra.iter().map(OsStr::new));
    let (ok, text) = run_py("compare_weight_only.py", &args);
    assert!(
        ok,
        "{} vs {}:\n{text}",
        ours.display(),
        orts.to_string_lossy()
    );
    text
}

/// `--lm-head-bits 8` puts the main graph's last MatMul at 8 bits; the same model as ORT's RTN
/// with that node at 8 bits in its `customized_weight_config`, bit for bit.
#[test]
fn lm_head_bits_match_ort_customized_config() {
    let dir = tempfile::tempdir().unwrap();
    let model = corpus_model("bytegpt");
    let feeds = corpus_feeds("bytegpt");
    let mine = dir.path().join("ours.onnx");
    let flags = ["--algo", "rtn", "--block-size", "32", "--lm-head-bits", "8"];
    let nodes = quantize_reported(&model, &mine, &flags);
    let eight: Vec<&(String, String)> = nodes.iter().filter(|(_, o)| o.contains("8-bit")).collect();
    assert_eq!(eight.len(), 1, "{nodes:?}");
    let last_matmul = nodes
        .iter()
        .rev()
        .find(|(_, o)| o.contains("MatMulNBits"))
        .unwrap();
    assert_eq!(
        eight[0], last_matmul,
        "the 8-bit node is not the last quantized MatMul"
    );
    let orts = dir.path().join("ort.onnx");
    let config = format!(
        "{{\"{}\": {{\"bits\": 8, \"group_size\": 32}}}}",
        last_matmul.0
    );
    let args: Vec<&OsStr> = [
        model.as_os_str(),
        orts.as_os_str(),
        "--algo".as_ref(),
        "rtn".as_ref(),
        "--block-size".as_ref(),
        "32".as_ref(),
        "--node-config".as_ref(),
        config.as_ref(),
    ]
    .to_vec();
    let (ok, text) = run_py("ort_weight_only.py", &args);
    assert!(ok, "{text}");
    let feeds = feeds.to_str().unwrap();
    let text = compare(
        &model,
        &mine,
        Some(&orts),
        &["--feeds", feeds, "--ignore-names"],
    );
    assert!(text.contains("nodes: ok"), "{text}");
}

/// The config's `customized_weight_config`: an exact name kept float, a glob at 8 bits with its
/// own block size; the exact name wins over the glob. The model runs in ONNX Runtime.
#[test]
fn per_node_settings_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let model = corpus_model("minilm-l6-v2");
    let all = quantize_reported(&model, &dir.path().join("all.onnx"), &[]);
    let matmuls: Vec<&String> = all
        .iter()
        .filter(|(_, o)| o.contains("MatMulNBits"))
        .map(|(n, _)| n)
        .collect();
    assert!(matmuls.len() > 4, "{all:?}");
    let (kept, glob) = (
        matmuls[0],
        format!("{}*", &matmuls[1][..matmuls[1].len() - 2]),
    );
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[customized_weight_config]\n\"{kept}\" = \"fp32\"\n\"{glob}\" = {{ bits = 8, \
             group_size = 32, scheme = \"sym\" }}\n\"{}\" = {{ bits = 2 }}\n",
            matmuls[2]
        ),
    )
    .unwrap();
    let out = dir.path().join("mixed.onnx");
    let nodes = quantize_reported(&model, &out, &["--config", config.to_str().unwrap()]);
    let outcome = |name: &str| &nodes.iter().find(|(n, _)| n == name).unwrap().1;
    assert!(
        outcome(kept).contains("kept float by its node entry"),
        "{}",
        outcome(kept)
    );
    assert!(
        outcome(matmuls[1]).contains("8-bit"),
        "{}",
        outcome(matmuls[1])
    );
    assert!(
        outcome(matmuls[2]).contains("2-bit"),
        "{}",
        outcome(matmuls[2])
    );
    assert!(
        outcome(matmuls[3]).contains("4-bit"),
        "{}",
        outcome(matmuls[3])
    );
    let feeds = corpus_feeds("minilm-l6-v2");
    compare(
        &model,
        &out,
        None,
        &["--feeds", feeds.to_str().unwrap(), "--min-cosine", "0.9"],
    );
    // An entry naming no node is an error, as --include/--exclude entries are.
    std::fs::write(
        &config,
        "[customized_weight_config]\n\"no_such_node\" = \"fp32\"\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.onnx");
    let (ok, stderr) = onnxq(&[
        "quantize".as_ref(),
        model.as_os_str(),
        "-o".as_ref(),
        bad.as_os_str(),
        "--mode".as_ref(),
        "weight-only".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
    ]);
    assert!(
        !ok && stderr.contains("no_such_node") && stderr.contains("hint:"),
        "{stderr}"
    );
    assert!(!bad.exists());
}

/// `--fold-bias` moves each constant bias Add into MatMulNBits' bias input: fewer nodes, the same
/// outputs as the unfolded model up to float rounding, and a model ONNX Runtime runs.
#[test]
fn fold_bias_matches_the_unfolded_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = corpus_model("minilm-l6-v2");
    let (plain, folded) = (
        dir.path().join("plain.onnx"),
        dir.path().join("folded.onnx"),
    );
    quantize_reported(&model, &plain, &[]);
    let nodes = quantize_reported(&model, &folded, &["--fold-bias"]);
    let with_bias = nodes.iter().filter(|(_, o)| o.contains("+ bias")).count();
    assert!(with_bias > 0, "{nodes:?}");
    let count = |p: &Path| onnxq_ir::load(p).unwrap().graph.nodes().count();
    assert_eq!(count(&plain) - count(&folded), with_bias);
    let feeds = corpus_feeds("minilm-l6-v2");
    let feeds = feeds.to_str().unwrap();
    compare(
        &plain,
        &folded,
        None,
        &["--feeds", feeds, "--min-cosine", "0.99999"],
    );
    compare(
        &model,
        &folded,
        None,
        &["--feeds", feeds, "--min-cosine", "0.9"],
    );
}

/// Quantized tensors are staged in a spill file beside the output; after the run the folder holds
/// the model and nothing else, and the result is the same with the output inline or external.
#[test]
fn the_spill_file_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let model = corpus_model("bytegpt");
    let out = dir.path().join("out.onnx");
    quantize(
        &model,
        &out,
        &["--mode", "weight-only", "--block-size", "32"],
    );
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["out.onnx"]);
}

/// GatherBlockQuantized at 8 bits (UINT8 codes; ORT's tool writes 4 bits only), both symmetries:
/// ONNX Runtime runs it, and the embedding's outputs stay next to the float model's.
#[test]
fn gather_at_8_bits_runs_in_ort() {
    let dir = tempfile::tempdir().unwrap();
    let model = corpus_model("bytegpt");
    let feeds = corpus_feeds("bytegpt");
    for sym in [false, true] {
        let out = dir.path().join(format!("g8-{sym}.onnx"));
        let mut flags = vec![
            "--bits",
            "8",
            "--block-size",
            "32",
            "--op-types",
            "MatMul,Gather",
        ];
        if sym {
            flags.push("--symmetric");
        }
        let nodes = quantize_reported(&model, &out, &flags);
        assert!(
            nodes
                .iter()
                .any(|(_, o)| o.contains("GatherBlockQuantized 8-bit")),
            "{nodes:?}"
        );
        let feeds = feeds.to_str().unwrap();
        compare(
            &model,
            &out,
            None,
            &["--feeds", feeds, "--min-cosine", "0.999"],
        );
    }
}
