//! Round trips of the real corpus models through the IR: `save(load(m))` is byte-identical to the
//! file, the IR validates, and external-data layouts reload to the same model.

use onnxq_ir::{Layout, load, save};
use onnxq_testkit::{CORPUS, corpus_model};

#[test]
fn corpus_models_round_trip_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    for name in CORPUS {
        let src = corpus_model(name);
        let model = load(&src).unwrap_or_else(|e| panic!("{name}: {e}"));
        model
            .graph
            .validate()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = dir.path().join(format!("{name}.onnx"));
        save(&model, &out, &Layout::Inline).unwrap();
        let a = std::fs::read(&src).unwrap();
        let b = std::fs::read(&out).unwrap();
        assert!(
            a == b,
            "{name}: re-encoded model differs from the file ({} vs {} bytes)",
            a.len(),
            b.len()
        );
        assert_eq!(
            model.to_bytes().unwrap(),
            a,
            "{name}: in-memory encoding differs from the streamed one"
        );
    }
}

#[test]
fn external_layout_reloads_to_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    for name in CORPUS {
        let src = corpus_model(name);
        let model = load(&src).unwrap();
        let ext = dir.path().join(format!("{name}-ext.onnx"));
        let layout = Layout::External {
            location: format!("{name}-ext.onnx.data"),
            threshold: 1024,
        };
        let saved = save(&model, &ext, &layout).unwrap();
        assert!(saved.external_tensors > 0, "{name}: nothing moved out");
        let reloaded = load(&ext).unwrap();
        assert_eq!(reloaded.external_files().len(), 1);
        let back = dir.path().join(format!("{name}-back.onnx"));
        save(&reloaded, &back, &Layout::Inline).unwrap();
        assert!(
            std::fs::read(&src).unwrap() == std::fs::read(&back).unwrap(),
            "{name}: external -> inline differs"
        );
    }
}
