//! The `onnxq` binary: parse arguments, run one command, print errors with hints, set the exit code.
//!
//! Only this crate prints or sets exit codes. Stdout carries data (`inspect` output); messages and
//! progress go to stderr. Exit codes: 0 success, 2 usage, input or I/O error.

mod args;
mod auto_args;
mod bench;
mod bench_args;
mod calibrate;
mod compare;
mod config;
mod engine;
mod inspect;
mod measure;
mod method_flags;
mod outputs;
mod preprocess;
mod preprocess_config;
mod quantize;
mod recovery_args;
mod repack;
mod shapes;
mod util;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    util::set_verbosity(match (cli.quiet, cli.verbose) {
        (true, _) => util::Verbosity::Quiet,
        (_, true) => util::Verbosity::Verbose,
        _ => util::Verbosity::Normal,
    });
    // Before any work: a signal during it must find the handler that removes temporaries.
    if let Err(e) = outputs::install_signal_cleanup() {
        util::report_error(&e);
        return ExitCode::from(2);
    }
    let result = match cli.command {
        args::Command::Inspect(a) => inspect::run(&a),
        args::Command::Repack(a) => repack::run(&a),
        args::Command::Preprocess(a) => preprocess::run(&a),
        args::Command::Quantize(a) => quantize::run(&a),
        args::Command::Calibrate(a) => calibrate::run(&a),
        args::Command::Compare(a) => compare::run(&a),
        args::Command::Bench(a) => bench::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            util::report_error(&e);
            ExitCode::from(2)
        }
    }
}
