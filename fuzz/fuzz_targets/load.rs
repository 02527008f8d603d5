//! Fuzzes the model loader on arbitrary bytes: it must never panic, and whatever it accepts must
//! validate, re-encode, and load again to the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(model) = onnxq_ir::from_bytes(bytes::Bytes::copy_from_slice(data)) else {
        return;
    };
    if let Err(e) = model.graph.validate() {
        panic!("accepted a model whose IR does not validate: {e}");
    }
    let encoded = model.to_bytes().expect("an accepted model re-encodes");
    let again = onnxq_ir::from_bytes(encoded.clone().into()).expect("a re-encoded model loads");
    assert_eq!(again.to_bytes().expect("re-encodes"), encoded, "encoding is not stable");
});
