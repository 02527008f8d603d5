//! File safety of every command: no input is ever overwritten (by path, link or hard link), only
//! regular files are read (a FIFO never blocks), a command writes all of its files or none, a
//! signal leaves no temporary behind, and engine errors name the user's model. Messages are insta
//! snapshots; commands run in a temp folder with relative paths, and that folder shows as `[TMP]`.

#![expect(
    clippy::unwrap_used,
    reason = "tests: a panic is the test failure we want"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use onnxq_testkit::repo_root;

/// A temp folder holding a copy of the demo model (`model.onnx`), its samples (`calib.npz`) and
/// the model with its weights in external data (`ext.onnx` + `w.bin`).
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let demo = repo_root().join("examples/demo");
    for f in ["model.onnx", "calib.npz"] {
        std::fs::copy(demo.join(f), dir.path().join(f)).unwrap();
    }
    let args = "repack model.onnx -o ext.onnx --external-data w.bin --size-threshold 1024";
    let o = onnxq(dir.path(), &args.split(' ').collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(dir.path(), &o));
    dir
}

/// `onnxq ARGS` run in `dir`, with the tract engine's defaults (no ONNX Runtime).
fn onnxq(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_onnxq"))
        .args(args)
        .current_dir(dir)
        .env_remove("ORT_DYLIB_PATH")
        .env("TMPDIR", dir)
        .output()
        .unwrap()
}

fn stderr(dir: &Path, o: &Output) -> String {
    let canonical = dir.canonicalize().unwrap();
    String::from_utf8_lossy(&o.stderr)
        .replace(canonical.to_str().unwrap(), "[TMP]")
        .replace(dir.to_str().unwrap(), "[TMP]")
}

/// The names in `dir` (sorted), to see what a command left.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Each command must fail with a specific hint, leave every file of `dir` byte-identical and add
/// none; returns the messages, one block per command, for a snapshot.
fn refused(dir: &Path, commands: &[&str]) -> String {
    let mut all = String::new();
    for cmd in commands {
        let before: Vec<(String, Vec<u8>)> = listing(dir)
            .into_iter()
            .filter(|n| dir.join(n).is_file())
            .map(|n| {
                let bytes = std::fs::read(dir.join(&n)).unwrap();
                (n, bytes)
            })
            .collect();
        let names_before = listing(dir);
        let o = onnxq(dir, &cmd.split(' ').collect::<Vec<_>>());
        let text = stderr(dir, &o);
        assert_eq!(o.status.code(), Some(2), "{cmd}:\n{text}");
        assert!(text.contains("\nhint: "), "{cmd}: no hint:\n{text}");
        assert!(!text.contains("onnxq <command> --help"), "{cmd}:\n{text}");
        for (name, bytes) in &before {
            let now = std::fs::read(dir.join(name)).unwrap();
            assert!(now == *bytes, "{cmd}: `{name}` was modified");
        }
        assert_eq!(listing(dir), names_before, "{cmd}: files added or removed");
        all += &format!("$ onnxq {cmd}\n{text}\n");
    }
    all
}

#[cfg(unix)]
#[test]
fn no_input_is_ever_overwritten() {
    let dir = setup();
    let d = dir.path();
    let r = onnxq(
        d,
        &[
            "calibrate",
            "model.onnx",
            "--data",
            "calib.npz",
            "--engine",
            "tract",
            "-o",
            "r.json",
        ],
    );
    assert!(r.status.success(), "{}", stderr(d, &r));
    std::fs::write(d.join("c.toml"), "per_channel = true\n").unwrap();
    std::fs::write(d.join("ov.json"), "{}\n").unwrap();
    std::fs::create_dir(d.join("samples")).unwrap();
    std::fs::copy(d.join("calib.npz"), d.join("samples/s.npz")).unwrap();
    std::os::unix::fs::symlink("model.onnx", d.join("link.onnx")).unwrap();
    std::fs::hard_link(d.join("model.onnx"), d.join("hard.onnx")).unwrap();
    let tract = "--engine tract";
    let text = refused(
        d,
        &[
            &format!("calibrate model.onnx --data calib.npz {tract} -o model.onnx"),
            "quantize model.onnx -o hard.onnx",
            "quantize model.onnx -o link.onnx",
            "repack ext.onnx -o ext2.onnx --external-data w.bin",
            "quantize ext.onnx -o w.bin",
            "quantize model.onnx -o q.onnx --report model.onnx",
            &format!("quantize model.onnx -o calib.npz --data calib.npz {tract}"),
            &format!("quantize model.onnx -o samples/s.npz --data samples {tract}"),
            "quantize model.onnx -o r.json --ranges r.json",
            "quantize model.onnx -o c.toml --config c.toml",
            "quantize model.onnx -o q.onnx --ranges r.json --overrides ov.json --report ov.json",
            &format!(
                "calibrate model.onnx --data calib.npz {tract} -o t/calibration.json --trt-table t"
            ),
            "quantize model.onnx -o q.onnx --report q.onnx",
        ],
    );
    insta::assert_snapshot!(text);
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

/// Runs `onnxq ARGS` in `dir`, killing it if it has not ended after 30 s (a blocked read).
#[cfg(unix)]
fn onnxq_bounded(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_onnxq"))
        .args(args)
        .current_dir(dir)
        .env_remove("ORT_DYLIB_PATH")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed().as_secs() > 30 {
            child.kill().unwrap();
            panic!("`onnxq {}` blocked for 30 s", args.join(" "));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[cfg(unix)]
#[test]
fn only_regular_files_are_read() {
    let dir = setup();
    let d = dir.path();
    std::fs::remove_file(d.join("w.bin")).unwrap();
    mkfifo(&d.join("w.bin"));
    std::fs::create_dir(d.join("samples")).unwrap();
    mkfifo(&d.join("samples/s.npz"));
    mkfifo(&d.join("r.json"));
    let mut all = String::new();
    for cmd in [
        "inspect ext.onnx",
        "repack ext.onnx -o out.onnx",
        "quantize ext.onnx -o out.onnx",
        "calibrate model.onnx --data samples --engine tract -o r.json2",
        "quantize model.onnx -o out.onnx --ranges r.json",
    ] {
        let o = onnxq_bounded(d, &cmd.split(' ').collect::<Vec<_>>());
        let text = stderr(d, &o);
        assert_eq!(o.status.code(), Some(2), "{cmd}:\n{text}");
        assert!(!d.join("out.onnx").exists(), "{cmd}: wrote a model");
        all += &format!("$ onnxq {cmd}\n{text}\n");
    }
    insta::assert_snapshot!(all);
}

#[test]
fn all_of_a_commands_files_or_none() {
    let dir = setup();
    let d = dir.path();
    let text = refused(
        d,
        &[
            "quantize model.onnx -o out.onnx --report nodir/rep.json",
            "quantize ext.onnx -o nodir/out.onnx --report rep.json",
        ],
    );
    insta::assert_snapshot!(text);
    // A TensorRT folder that does not exist yet is made, with every table, and the ranges file.
    let o = onnxq(
        d,
        &[
            "calibrate",
            "model.onnx",
            "--data",
            "calib.npz",
            "--engine",
            "tract",
            "-o",
            "r.json",
            "--trt-table",
            "trt",
        ],
    );
    assert!(o.status.success(), "{}", stderr(d, &o));
    assert_eq!(
        listing(&d.join("trt")),
        [
            "calibration.cache",
            "calibration.flatbuffers",
            "calibration.json"
        ]
    );
    assert!(listing(d).iter().all(|n| !n.starts_with(".onnxq-")));
}

/// A model big enough that `repack` takes a while: minilm-l6-v2 (90 MB) from the corpus.
fn big_model() -> PathBuf {
    onnxq_testkit::corpus_model("minilm-l6-v2")
}

#[cfg(unix)]
#[test]
fn a_signal_leaves_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut child = Command::new(env!("CARGO_BIN_EXE_onnxq"))
        .arg("repack")
        .arg(big_model())
        .args(["-o", "out.onnx", "--external-data", "out.bin"])
        .current_dir(d)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Signal as soon as the first temporary appears: the write of 90 MB is then under way.
    let start = std::time::Instant::now();
    while !listing(d).iter().any(|n| n.starts_with(".onnxq-")) {
        assert!(child.try_wait().unwrap().is_none(), "repack ended first");
        assert!(start.elapsed().as_secs() < 60, "no temporary appeared");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(143), "{o:?}");
    assert_eq!(listing(d), Vec::<String>::new(), "left behind");
}

/// Ctrl-C while the engine's copy of the model exists (in TMPDIR): it is removed, exit code 130.
#[cfg(unix)]
#[test]
fn ctrl_c_removes_the_engines_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (d, tmp) = (dir.path(), dir.path().join("tmp"));
    std::fs::create_dir(&tmp).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_onnxq"))
        .arg("calibrate")
        .arg(big_model())
        .arg("--data")
        .arg(onnxq_testkit::corpus_feeds("minilm-l6-v2"))
        .args(["--engine", "tract", "-o", "r.json"])
        .current_dir(d)
        .env("TMPDIR", &tmp)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !listing(&tmp).iter().any(|n| n.starts_with("onnxq-engine-")) {
        assert!(child.try_wait().unwrap().is_none(), "calibrate ended first");
        assert!(start.elapsed().as_secs() < 60, "no engine copy appeared");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{o:?}");
    assert_eq!(listing(&tmp), Vec::<String>::new(), "left behind");
    assert_eq!(listing(d), ["tmp"], "left behind");
}

#[test]
fn engine_errors_name_the_users_model() {
    let dir = setup();
    let d = dir.path();
    // The demo model with one node of an op no engine knows: onnxq loads it, the engine refuses it.
    let mut proto: onnxq_ir::proto::ModelProto =
        prost::Message::decode(std::fs::read(d.join("model.onnx")).unwrap().as_slice()).unwrap();
    let graph = proto.graph.as_mut().unwrap();
    let input = graph.input[0].name.clone().unwrap();
    graph.node.push(onnxq_testkit::node(
        "NoSuchOp",
        "odd",
        &[&input],
        &["odd_out"],
    ));
    std::fs::write(d.join("odd.onnx"), prost::Message::encode_to_vec(&proto)).unwrap();
    let mut all = String::new();
    for engine in ["tract", "ort"] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_onnxq"));
        cmd.args([
            "calibrate",
            "odd.onnx",
            "--data",
            "calib.npz",
            "-o",
            "r.json",
        ])
        .args(["--engine", engine])
        .current_dir(d)
        .env("TMPDIR", d);
        if engine == "tract" {
            // No ONNX Runtime to be found: the hint says how to get it, on every machine.
            cmd.env_remove("ORT_DYLIB_PATH")
                .env("ONNXQ_PYTHON", d.join("no-python"));
        } else {
            // ONNX Runtime's library from the oracle's Python package, as CI has it.
            cmd.env("ONNXQ_PYTHON", onnxq_testkit::python());
        }
        let o = cmd.output().unwrap();
        let text = stderr(d, &o);
        assert_eq!(o.status.code(), Some(2), "{engine}:\n{text}");
        assert!(
            !text.contains("onnxq-engine-"),
            "{engine}: names the copy:\n{text}"
        );
        assert!(
            text.contains("`odd.onnx`"),
            "{engine}: no model name:\n{text}"
        );
        assert!(listing(d).iter().all(|n| !n.starts_with("onnxq-engine-")));
        all += &format!("$ onnxq calibrate odd.onnx ... --engine {engine}\n{text}\n");
    }
    insta::assert_snapshot!(all);
}
