//! The HTML page against its JSON: a synthetic report (figures from ≈ 346 dB for equal tensors
//! down to negative dB, awkward names, every section filled) is rendered and
//! `tests/py/check_report_html.py` checks, with the oracle's Python, that the page is balanced,
//! loads nothing from the network and plots exactly the JSON's figures. A tampered page must fail
//! the same check, so a checker that accepts anything would be caught.
//!
//! `ONNXQ_HTML_SAMPLE=DIR` also writes `report_synthetic.{json,html}` there, to look at the page
//! (`scripts/render_html.sh DIR/report_synthetic.html OUT.png`).

use std::path::Path;

use onnxq_debug::Report;
use onnxq_debug::report::{
    ActivationEntry, BeforeAfter, Best, NodeOutcome, OutputEntry, Quantization, Ranked, Ranking,
    SCHEMA, Suggestion, WeightEntry,
};

/// A small CNN's worth of tensors: conv/relu blocks, a pooling head, a softmax.
fn synthetic() -> Report {
    let mut activations = vec![ActivationEntry {
        name: "input".into(),
        index: 0,
        qdq_sqnr_db: Some(41.27093184),
        xmodel_sqnr_db: Some(41.27093184),
        xmodel_cosine: Some(0.9999627),
        xmodel_max_abs_err: Some(0.0039),
        quant_tensor: Some("input_QuantizeLinear_Output".into()),
        ..Default::default()
    }];
    let mut weights = Vec::new();
    let ops = ["Conv", "Relu", "Conv", "Add", "Relu", "MaxPool"];
    let mut sqnr = 38.0f64;
    for i in 1..=36usize {
        let op = ops[(i - 1) % ops.len()];
        let node = format!("/features/{}/{op}", (i - 1) / ops.len());
        // Irregular decay with full-precision figures; the Add at index 10 is where it breaks.
        let prev = sqnr;
        sqnr -= 0.35 + 0.9 * ((i as f64) * 1.7).sin().abs();
        if i == 10 {
            sqnr -= 11.0;
        }
        let (qdq, xmodel) = match op {
            // A pooling output is the same tensor in both models here: ≈ 346 dB.
            "MaxPool" => (None, Some(346.2739004135498)),
            _ => (Some(sqnr + 6.0 + (i as f64 * 0.61).cos()), Some(sqnr)),
        };
        activations.push(ActivationEntry {
            name: format!("{node}_output_0"),
            index: i,
            producer: Some(node.clone()),
            op: Some(op.into()),
            qdq_sqnr_db: qdq,
            xmodel_sqnr_db: if i == 20 { None } else { xmodel },
            xmodel_cosine: xmodel.map(|s| 1.0 - 10f64.powf(-s / 10.0) / 2.0),
            xmodel_max_abs_err: Some(0.01 * i as f64),
            drop_db: Some(prev - sqnr),
            quant_tensor: Some(format!("{node}_output_0_DequantizeLinear_Output")),
        });
        if op == "Conv" {
            weights.push(WeightEntry {
                name: format!("features.{}.weight<{i}>", (i - 1) / ops.len()),
                quantized: format!("features.{i}.weight_quantized"),
                node: format!("{node}_weight_DequantizeLinear"),
                op: "DequantizeLinear".into(),
                consumer: Some(node.clone()),
                granularity: "per-channel".into(),
                dtype: "int8".into(),
                shape: vec![32, 16, 3, 3],
                index: i,
                sqnr_db: if i == 13 {
                    -3.5127
                } else {
                    44.0 - i as f64 * 0.73
                },
                max_abs_err: 0.002 * i as f64,
                mean_abs_err: 0.0004 * i as f64,
                mse: 1e-6 * i as f64,
            });
        }
    }
    activations.push(ActivationEntry {
        name: "probs & \"logits\" <'final'>".into(),
        index: 37,
        producer: Some("head/Softmax".into()),
        op: Some("Softmax".into()),
        xmodel_sqnr_db: Some(-4.25),
        drop_db: Some(2.5),
        ..Default::default()
    });
    weights.push(WeightEntry {
        name: "head.bias".into(),
        index: 37,
        sqnr_db: 346.0,
        op: "DequantizeLinear".into(),
        granularity: "per-tensor".into(),
        dtype: "int32".into(),
        shape: vec![10],
        ..Default::default()
    });
    let drop = &activations[10];
    let first_drop = Ranked {
        kind: "activation".into(),
        name: drop.name.clone(),
        node: drop.producer.clone(),
        index: drop.index,
        sqnr_db: drop.xmodel_sqnr_db.unwrap_or_default(),
        drop_db: drop.drop_db,
    };
    let worst = vec![
        Ranked {
            kind: "activation".into(),
            name: activations[37].name.clone(),
            node: Some("head/Softmax".into()),
            index: activations[37].index,
            sqnr_db: -4.25,
            drop_db: Some(2.5),
        },
        Ranked {
            kind: "weight".into(),
            name: weights[4].name.clone(),
            node: weights[4].consumer.clone(),
            index: weights[4].index,
            sqnr_db: -3.5127,
            drop_db: None,
        },
        first_drop.clone(),
    ];
    let excl = |n: &[&str]| n.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    Report {
        schema: SCHEMA.into(),
        float_model: "models/cnn/model.onnx".into(),
        quant_model: "out/cnn.int8 <qdq>.onnx".into(),
        engine: "onnxruntime 1.31.1".into(),
        samples: 32,
        format: "qdq".into(),
        weights,
        activations,
        outputs: vec![OutputEntry {
            name: "probs".into(),
            sqnr_db: -4.25,
            cosine: 0.8123456789,
            max_abs_err: 0.731,
            mean_abs_err: 1.25e-5,
            top1_agreement: Some(0.90625),
        }],
        ranking: Ranking {
            threshold_db: 3.0,
            first_drop: Some(first_drop),
            worst,
        },
        suggestions: vec![
            Suggestion {
                exclude: excl(&["/features/1/Add"]),
                output_sqnr_db: BeforeAfter {
                    before: -4.25,
                    after: 18.5,
                },
                output_cosine: BeforeAfter {
                    before: 0.8123,
                    after: 0.99301,
                },
                reason: "first drop: /features/1/Add_output_0 drops 12.3 dB".into(),
            },
            Suggestion {
                exclude: excl(&["head/Softmax", "/features/2/Conv"]),
                output_sqnr_db: BeforeAfter {
                    before: -4.25,
                    after: 1.0,
                },
                output_cosine: BeforeAfter {
                    before: 0.8123,
                    after: 0.9,
                },
                reason: "worst weight features.2.weight<13>".into(),
            },
        ],
        best: Some(Best {
            exclude: excl(&["/features/1/Add"]),
            output_sqnr_db: BeforeAfter {
                before: -4.25,
                after: 18.5,
            },
            flag: "--exclude /features/1/Add".into(),
            config: "exclude = [\"/features/1/Add\"]".into(),
        }),
        notes: vec![
            "MatMul nodes were not tried: none ranked".into(),
            "3 suggestions <did not> improve & were dropped".into(),
        ],
        quantization: Some(Quantization {
            settings: serde_json::json!({"mode": "static", "format": "qdq", "per_channel": true,
                "calibration": {"method": "minmax", "samples": 32}}),
            nodes: vec![
                NodeOutcome {
                    node: "/features/0/Conv".into(),
                    op_type: "Conv".into(),
                    status: "quantized".into(),
                    detail: "QDQ".into(),
                },
                NodeOutcome {
                    node: "head/Softmax".into(),
                    op_type: "Softmax".into(),
                    status: "skipped".into(),
                    detail: "op not quantizable".into(),
                },
            ],
        }),
        peak_held_bytes: 1 << 20,
    }
}

fn check(dir: &Path, json: &str, html: &str) -> (bool, String) {
    let (j, h) = (dir.join("report.json"), dir.join("report.html"));
    std::fs::write(&j, json).expect("write report.json");
    std::fs::write(&h, html).expect("write report.html");
    onnxq_testkit::run_py("check_report_html.py", &[j.as_os_str(), h.as_os_str()])
}

#[test]
fn plotted_points_equal_the_json() {
    let report = synthetic();
    let json = serde_json::to_string_pretty(&report).unwrap();
    let html = onnxq_debug::html::render(&report);
    if let Some(dir) = std::env::var_os("ONNXQ_HTML_SAMPLE") {
        let dir = Path::new(&dir);
        std::fs::write(dir.join("report_synthetic.json"), &json).unwrap();
        std::fs::write(dir.join("report_synthetic.html"), &html).unwrap();
    }
    let figures = report.weights.len()
        + report
            .activations
            .iter()
            .filter(|a| a.xmodel_sqnr_db.is_some())
            .count()
        + report
            .activations
            .iter()
            .filter(|a| a.qdq_sqnr_db.is_some())
            .count();
    let tmp = tempfile::tempdir().unwrap();
    let (ok, out) = check(tmp.path(), &json, &html);
    assert!(ok, "check_report_html.py failed:\n{out}");
    assert_eq!(out.trim(), format!("ok {figures} points"));

    // The checker must see a changed figure, a missing point, an extra one and a stray tag.
    let tampered = [
        html.replacen("data-sqnr=\"-3.5127\"", "data-sqnr=\"-3.5126999\"", 1),
        html.replacen("data-series=\"weight\"", "data-series=\"weigh\"", 1),
        html.replacen("</svg>", "<circle data-series=\"weight\" data-name=\"x\" data-index=\"1\" data-sqnr=\"1\"/></svg>", 1),
        html.replacen("</h2>", "</h3>", 1),
        html.replacen("<style>", "<style>@import url(https://example.invalid/a.css);", 1),
    ];
    for (i, bad) in tampered.iter().enumerate() {
        assert_ne!(bad, &html, "tamper {i} changed nothing");
        let (ok, out) = check(tmp.path(), &json, bad);
        assert!(!ok, "tamper {i} passed the checker:\n{out}");
    }
}
