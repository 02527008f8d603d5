//! `quantize --auto` on digits-cnn: the search meets an easy target with a fully quantized
//! model and lists every candidate; with one node ruined on purpose (an override forcing its
//! output range to ±0.01) it keeps that node float; the calibrations and bias correction are
//! candidates, SmoothQuant and equalization too (or reported as finding nothing to change), and
//! the chosen one's settings are what the model records; a given activation type or weight
//! granularity is kept in every candidate; its settings are refused without --auto, and so is
//! --data with a single sample; with --eval-cmd the user's metric script judges; with no node
//! allowed float, an activation given 16 bits meets a target 8 bits cannot.

#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use common::{quantize, refused, sqnr};
use onnxq_testkit::{corpus_dir, corpus_feeds, corpus_model, python, python_ok};

/// The report's `search` after `quantize --auto` with `flags`.
fn search(out: &std::path::Path, flags: &[&str]) -> (serde_json::Value, String) {
    let (model, feeds) = (corpus_model("digits-cnn"), corpus_feeds("digits-cnn"));
    let report = out.with_extension("json");
    let mut args = vec![
        "--data",
        feeds.to_str().unwrap(),
        "--engine",
        "ort",
        "--auto",
        "-v",
        "--report",
        report.to_str().unwrap(),
    ];
    args.extend_from_slice(flags);
    let log = quantize(&model, out, &args);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    (r["search"].clone(), log)
}

/// `search` on digits-cnn with `relu_1` ruined by an override (its range forced to ±0.01), the
/// target sqnr=20 and the op types given (so the configurations cannot drop Relu), plus `more`.
fn ruined_search(more: &[&str]) -> (serde_json::Value, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let overrides = dir.path().join("ruin.json");
    std::fs::write(&overrides, r#"{"relu_1": [{"rmin": -0.01, "rmax": 0.01}]}"#).unwrap();
    let mut flags = vec![
        "--overrides",
        overrides.to_str().unwrap(),
        "--target",
        "sqnr=20",
        "--op-types",
        "Conv,Relu,MaxPool,Gemm",
    ];
    flags.extend_from_slice(more);
    let (s, log) = search(&dir.path().join("auto.onnx"), &flags);
    (s, log, dir)
}

/// The one decision marked chosen in `search`.
fn chosen(s: &serde_json::Value) -> serde_json::Value {
    let decisions = s["decisions"].as_array().unwrap();
    let chosen: Vec<_> = decisions.iter().filter(|d| d["chosen"] == true).collect();
    assert_eq!(chosen.len(), 1, "{s}");
    chosen[0].clone()
}

#[test]
fn an_easy_target_is_met_by_a_fully_quantized_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("auto.onnx");
    let (s, log) = search(&out, &["--target", "sqnr=25"]);
    assert_eq!(s["met"], true, "{log}");
    assert!(s["decisions"].as_array().unwrap().len() >= 8, "{s}");
    assert_eq!(chosen(&s)["float_share"], 0.0, "{s}");
    let (model, feeds) = (corpus_model("digits-cnn"), corpus_feeds("digits-cnn"));
    assert!(sqnr(&model, &out, &feeds) >= 25.0, "{log}");
    // The same nodes with int8 and uint8 activations run different kernels (S8S8 and U8S8, far
    // apart in speed on x86): each is timed, never given the other's speed.
    let speed = |config: &str| {
        let d = s["decisions"].as_array().unwrap();
        d.iter().find(|d| d["config"] == config).unwrap()["speedup"].clone()
    };
    let (u8s, s8s) = (
        speed("QUInt8 activations, per-tensor, all ops, MinMax ranges"),
        speed("QInt8 activations, per-tensor, all ops, MinMax ranges"),
    );
    assert_ne!(u8s, s8s, "{s}");
}

#[test]
fn a_ruined_node_is_kept_float() {
    // Op types given: the configurations keep them, so only keeping the node float avoids it.
    let (s, log, _dir) = ruined_search(&[]);
    assert_eq!(s["met"], true, "{log}");
    let chosen = chosen(&s);
    let kept: Vec<&str> = chosen["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        kept.iter()
            .any(|n| ["node_Conv_26", "node_relu_1"].contains(n)),
        "{chosen}\n{log}"
    );
}

#[test]
fn its_settings_need_auto_and_a_readable_target() {
    let dir = tempfile::tempdir().unwrap();
    let (model, feeds) = (corpus_model("digits-cnn"), corpus_feeds("digits-cnn"));
    let out = dir.path().join("q.onnx");
    let data = feeds.to_str().unwrap();
    for flag in [&["--target", "cos=0.9"][..], &["--per-tensor"][..]] {
        let mut args = vec!["--data", data];
        args.extend_from_slice(flag);
        let log = refused(&model, &out, &args);
        assert!(log.contains("without --auto"), "{log}");
    }
    // Unreadable values are refused by the argument parser, naming the flag.
    for (flag, value, says) in [
        ("--target", "top1=3", "cos=C, sqnr=DB"),
        ("--max-float", "120%", "between 0% and 100%"),
    ] {
        let args = [
            "quantize".as_ref(),
            model.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--data".as_ref(),
            data.as_ref(),
            "--auto".as_ref(),
            flag.as_ref(),
            value.as_ref(),
        ];
        let (ok, log) = common::onnxq(&args);
        assert!(!ok && log.contains(flag) && log.contains(says), "{log}");
        assert!(!out.exists());
    }
}

#[test]
fn the_budget_stops_refinement_and_says_so() {
    let (s, log, _dir) = ruined_search(&["--budget", "0.001s"]);
    // Only the configurations were measured (4 per calibration): every one misses the target.
    assert_eq!(s["met"], false, "{log}");
    assert_eq!(s["decisions"].as_array().unwrap().len(), 12, "{s}");
    let not_tried = s["not_tried"].to_string();
    assert!(not_tried.contains("--budget reached"), "{not_tried}");
    assert!(log.contains("no candidate meets sqnr=20"), "{log}");
}

/// The `onnxq.settings` metadata of the model at `path`.
fn settings(path: &std::path::Path) -> serde_json::Value {
    let code = "import onnx, sys\nm = onnx.load(sys.argv[1])\n\
                print([p.value for p in m.metadata_props if p.key == 'onnxq.settings'][0])";
    serde_json::from_str(&python_ok(&["-c".as_ref(), code.as_ref(), path.as_ref()])).unwrap()
}

#[test]
fn calibrations_and_bias_correction_are_candidates_and_the_chosen_is_recorded() {
    let (s, log, dir) = ruined_search(&[]);
    let out = dir.path().join("auto.onnx");
    let decisions = s["decisions"].as_array().unwrap();
    let configs: Vec<&str> = decisions
        .iter()
        .map(|d| d["config"].as_str().unwrap())
        .collect();
    for calibration in [
        "MinMax ranges",
        "Percentile 99.999 ranges",
        "Percentile 99.99 ranges",
    ] {
        assert!(
            configs.iter().any(|c| c.contains(calibration)),
            "{configs:?}"
        );
    }
    // Every configuration misses the target: the refined ones are tried with the recovery
    // steps, each a candidate or reported as finding nothing to change.
    assert!(
        configs.iter().any(|c| c.ends_with("bias correction")),
        "{configs:?}"
    );
    let not_tried = s["not_tried"].to_string();
    for step in ["SmoothQuant", "equalization"] {
        let made = configs.iter().any(|c| c.contains(&format!(", {step}")));
        let skipped = not_tried.contains(&format!("{step}: it found nothing to change"));
        assert!(made != skipped, "{step}: {configs:?} {not_tried}");
    }
    let chosen = chosen(&s);
    let config = chosen["config"].as_str().unwrap();
    let recorded = settings(&out);
    assert_eq!(
        recorded["bias_correction"] == true,
        config.contains("bias correction"),
        "{config}: {recorded}\n{log}"
    );
    let method = recorded["calibration"]["method"].as_str().unwrap();
    assert_eq!(
        method.starts_with("percentile 99.99 "),
        config.contains("Percentile 99.99 ranges"),
        "{config}: {method}"
    );
    // A method given is the only calibration.
    let (s, _) = search(&out, &["--target", "sqnr=25", "--method", "minmax"]);
    let given = s["decisions"].as_array().unwrap();
    assert!(
        given
            .iter()
            .all(|d| d["config"].as_str().unwrap().contains("the given ranges")),
        "{s}"
    );
}

#[test]
fn a_given_activation_type_and_weight_granularity_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("auto.onnx");
    for (flags, says) in [
        (&["--per-tensor"][..], "per-tensor"),
        (&["--per-channel"][..], "per-channel"),
        (&["--activation-type", "uint8"][..], "QUInt8 activations"),
    ] {
        let mut args = vec!["--target", "sqnr=25"];
        args.extend_from_slice(flags);
        let (s, log) = search(&out, &args);
        let decisions = s["decisions"].as_array().unwrap();
        assert!(
            decisions
                .iter()
                .all(|d| d["config"].as_str().unwrap().contains(says)),
            "{flags:?}: {s}\n{log}"
        );
    }
}

#[test]
fn a_single_sample_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one.npz");
    let code = "import numpy as np, sys\nd = np.load(sys.argv[1])\n\
                np.savez(sys.argv[2], **{k: v[:1] for k, v in d.items()})";
    let feeds = corpus_feeds("digits-cnn");
    python_ok(&["-c".as_ref(), code.as_ref(), feeds.as_ref(), one.as_ref()]);
    let out = dir.path().join("q.onnx");
    let log = refused(
        &corpus_model("digits-cnn"),
        &out,
        &["--data", one.to_str().unwrap(), "--auto"],
    );
    assert!(log.contains("at least 2 samples"), "{log}");
}

#[test]
fn the_users_metric_script_judges_with_eval_cmd() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("auto.onnx");
    let script = corpus_dir().join("eval/digits-cnn.py");
    let cmd = format!("'{}' '{}' {{model}}", python().display(), script.display());
    let (float_line, float_top1) = common::metric("digits-cnn", &corpus_model("digits-cnn"));
    let bound = float_top1 - 0.005;
    let target = format!("metric={bound}");
    let (s, log) = search(&out, &["--target", &target, "--eval-cmd", &cmd]);
    assert_eq!(s["met"], true, "{float_line}\n{log}");
    let chosen = chosen(&s);
    // The metric the search judged by is the written model's.
    let (line, top1) = common::metric("digits-cnn", &out);
    assert_eq!(chosen["metric"].as_f64().unwrap(), top1, "{line}\n{chosen}");
    assert!(top1 >= bound, "{line}");
    assert!(log.contains("metric "), "{log}");

    // A metric target needs the script, the script needs {model}, and a failing script stops
    // the search naming it.
    let (model, feeds) = (corpus_model("digits-cnn"), corpus_feeds("digits-cnn"));
    let data = feeds.to_str().unwrap();
    let q = dir.path().join("q.onnx");
    for (flags, says) in [
        (vec!["--target", "metric=0.9"], "no --eval-cmd"),
        (vec!["--eval-cmd", "true {model}"], "does not bound one"),
        (
            vec!["--target", "metric=0.9", "--eval-cmd", "true"],
            "no {model}",
        ),
        (
            vec!["--target", "metric<=0.9", "--eval-cmd", "false {model}"],
            "failed",
        ),
        (
            vec![
                "--target",
                "metric=0.9",
                "--eval-cmd",
                "echo none; true {model}",
            ],
            "printed no number",
        ),
    ] {
        let mut args = vec!["--data", data, "--auto"];
        args.extend(flags);
        let log = refused(&model, &q, &args);
        assert!(log.contains(says), "{args:?}: {log}");
    }
}

#[test]
fn sixteen_bit_activations_meet_a_target_with_no_node_float() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("auto.onnx");
    // One calibration, one weight granularity and the op types pinned: the search then refines
    // a single start (QUInt8 and QInt8 score alike), whatever the timings, and neither its
    // recovery steps (SmoothQuant, equalization, bias correction) nor a node kept float (0 %
    // allowed) can meet 40 dB.
    let flags = [
        "--target",
        "sqnr=40",
        "--max-float",
        "0%",
        "--method",
        "percentile",
        "--percentile",
        "99.999",
        "--per-channel",
        "--op-types",
        "Conv,Gemm",
    ];
    let (s, log) = search(&out, &flags);
    assert_eq!(s["met"], true, "{log}");
    let decisions = s["decisions"].as_array().unwrap();
    // No candidate without a 16-bit activation and with no node float reaches 40 dB.
    assert!(
        decisions
            .iter()
            .filter(|d| d["sixteen_bit"].is_null() && d["excluded"].as_array().unwrap().is_empty())
            .all(|d| d["sqnr_db"].as_f64().unwrap() < 40.0),
        "{s}"
    );
    let chosen = chosen(&s);
    let wide = chosen["sixteen_bit"]
        .as_array()
        .unwrap_or_else(|| panic!("no 16-bit activation in the chosen one: {s}\n{log}"));
    assert!(
        !wide.is_empty() && chosen["excluded"].as_array().unwrap().is_empty(),
        "{chosen}"
    );
    // The model records the overrides, so `compare --suggest` re-makes it.
    let recorded = settings(&out)["options"]["overrides"].clone();
    for t in wide {
        let t = t.as_str().unwrap();
        assert!(recorded[t][0]["quant_type"].is_string(), "{t}: {recorded}");
    }
    let (model, feeds) = (corpus_model("digits-cnn"), corpus_feeds("digits-cnn"));
    assert!(sqnr(&model, &out, &feeds) >= 38.0, "{log}");
}
