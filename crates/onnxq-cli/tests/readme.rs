//! The README's promises a new user meets first: "the two commands" are two, the first runs the
//! main job on the shipped demo model with the embedded engine and writes an output git ignores,
//! the second is the test command the test kit names when the corpus is missing, the install line
//! is `--locked`, and the release profile ships no debug info.

#![expect(
    clippy::unwrap_used,
    reason = "tests: a panic is the test failure we want"
)]

use std::process::Command;

use onnxq_testkit::repo_root;

fn readme() -> String {
    std::fs::read_to_string(repo_root().join("README.md")).unwrap()
}

/// The `sh` code blocks of the README section headed `heading`.
fn sh_blocks(text: &str, heading: &str) -> Vec<String> {
    let start = text.find(heading).unwrap();
    let section = &text[start + heading.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    section
        .split("```sh\n")
        .skip(1)
        .map(|b| b[..b.find("```").unwrap()].trim().replace("\\\n", " "))
        .collect()
}

#[test]
fn the_two_commands_are_two_and_work() {
    let text = readme();
    let blocks = sh_blocks(&text, "## The two commands");
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    assert_eq!(blocks[1], "bash scripts/test.sh");
    let args: Vec<&str> = blocks[0]
        .strip_prefix("cargo run --release -p onnxq-cli -- ")
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(
        args.contains(&"tract"),
        "the main job uses the embedded engine: {args:?}"
    );
    let o = args.iter().position(|a| *a == "-o").unwrap();
    let out_name = args[o + 1];
    // Git ignores the output the README writes in the repository.
    let ignored = Command::new("git")
        .args(["check-ignore", "-q", out_name])
        .current_dir(repo_root())
        .status()
        .unwrap();
    assert!(ignored.success(), "`{out_name}` is not ignored by git");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(out_name);
    let mut run: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    run[o + 1] = out.to_str().unwrap().to_owned();
    let r = Command::new(env!("CARGO_BIN_EXE_onnxq"))
        .args(&run)
        .current_dir(repo_root())
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let model = std::fs::read(&out).unwrap();
    assert!(
        model
            .windows(13)
            .any(|w| w == b"QuantizeLinear"[..13].as_ref())
    );
}

#[test]
fn install_is_locked_and_the_binary_is_lean() {
    let text = readme();
    let install = sh_blocks(&text, "## Install");
    assert!(
        install[0].starts_with("cargo install --locked"),
        "{install:?}"
    );
    let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    let release = &manifest[manifest.find("[profile.release]").unwrap()..];
    assert!(release.contains("debug = false"), "{release}");
}

#[test]
fn the_test_kit_names_the_readme_test_command() {
    let kit = std::fs::read_to_string(repo_root().join("crates/onnxq-testkit/src/lib.rs")).unwrap();
    assert!(kit.contains("run `bash scripts/test.sh`"));
    let dir = tempfile::tempdir().unwrap();
    let r = Command::new("bash")
        .arg(repo_root().join("scripts/test.sh"))
        .env("ONNXQ_CORPUS", dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(
        err.contains("hint:") && err.contains("ONNXQ_CORPUS"),
        "{err}"
    );
}
