//! Latency as a deployment sees it: ONNX Runtime sessions with the settings an application uses
//! (every graph optimization on, as `InferenceSession`'s default; a fixed intra-op thread count;
//! sequential execution), feeds turned into ONNX Runtime values once, and runs of several models
//! interleaved so that a slow phase of the machine (another process, frequency changes) hits
//! every model alike instead of whichever ran then.

use std::path::Path;
use std::time::{Duration, Instant};

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::DynValue;

use crate::ort_engine::{environment, to_ort};
use crate::{EngineError, Result, Tensor};

/// One model loaded for timing, with its feeds ready.
pub struct TimedSession {
    session: Session,
    /// Per sample, the feeds as ONNX Runtime values (made once: conversion is not timed).
    feeds: Vec<Vec<(String, DynValue)>>,
}

impl TimedSession {
    /// Loads `model` with every graph optimization on and `threads` intra-op threads (0: ONNX
    /// Runtime's default, one per core), and converts `samples` into its feeds.
    pub fn load(
        lib: &Path,
        model: &Path,
        threads: usize,
        samples: &[Vec<(String, Tensor)>],
    ) -> Result<TimedSession> {
        let env = environment(lib)?;
        let session = Session::builder(env)
            .and_then(|b| {
                b.with_optimization_level(GraphOptimizationLevel::All)
                    .map_err(Into::into)
            })
            .and_then(|b| b.with_intra_threads(threads).map_err(Into::into))
            .and_then(|b| b.with_inter_threads(1).map_err(Into::into))
            .and_then(|b| b.with_parallel_execution(false).map_err(Into::into))
            .and_then(|mut b| b.commit_from_file(model))
            .map_err(|e| {
                EngineError::Run(format!(
                    "ONNX Runtime cannot load `{}`: {e}",
                    model.display()
                ))
            })?;
        let feeds = samples
            .iter()
            .map(|s| {
                s.iter()
                    .map(|(name, t)| Ok((name.clone(), to_ort(name, t)?)))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        if feeds.is_empty() {
            return Err(EngineError::Feed("no sample to time the model on".into()));
        }
        Ok(TimedSession { session, feeds })
    }

    /// The number of samples it was given.
    pub fn samples(&self) -> usize {
        self.feeds.len()
    }

    /// One run on sample `i` (modulo the number of samples); the time of `run` alone, outputs
    /// included (they are made and freed, as an application receives them).
    pub fn run_timed(&mut self, i: usize) -> Result<Duration> {
        let feeds = &self.feeds[i % self.feeds.len()];
        let inputs: Vec<(
            std::borrow::Cow<'_, str>,
            ort::session::SessionInputValue<'_>,
        )> = feeds
            .iter()
            .map(|(n, v)| (n.as_str().into(), v.into()))
            .collect();
        let start = Instant::now();
        let outputs = self
            .session
            .run(inputs)
            .map_err(|e| EngineError::Run(format!("ONNX Runtime run failed: {e}")))?;
        drop(outputs);
        Ok(start.elapsed())
    }
}

/// How runs are scheduled.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Untimed runs of each model first (allocations, caches, thread start-up).
    pub warmup: usize,
    /// Timed runs of each model.
    pub runs: usize,
}

/// Runs every session `warmup` then `runs` times, one run of each per round, the order rotated
/// each round (so no model always runs first, right after another's cache traffic); round `r`
/// feeds every model sample `r`. `progress` gets the rounds done. Returns each model's times.
pub fn interleaved(
    sessions: &mut [TimedSession],
    schedule: Schedule,
    mut progress: impl FnMut(usize),
) -> Result<Vec<Vec<Duration>>> {
    let n = sessions.len();
    let mut times = vec![Vec::with_capacity(schedule.runs); n];
    for round in 0..schedule.warmup + schedule.runs {
        for k in 0..n {
            let m = (round + k) % n;
            let t = sessions[m].run_timed(round)?;
            if round >= schedule.warmup {
                times[m].push(t);
            }
        }
        progress(round + 1);
    }
    Ok(times)
}

/// A latency distribution in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// The median run.
    pub median_ms: f64,
    /// The 10th and 90th percentiles (nearest rank): the spread.
    pub p10_ms: f64,
    /// See `p10_ms`.
    pub p90_ms: f64,
    /// The fastest run.
    pub min_ms: f64,
    /// The number of runs.
    pub runs: usize,
}

impl Latency {
    /// The distribution of `times`; `None` when there are none.
    pub fn of(times: &[Duration]) -> Option<Latency> {
        let mut ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1e3).collect();
        if ms.is_empty() {
            return None;
        }
        ms.sort_by(f64::total_cmp);
        let n = ms.len();
        let median = if n % 2 == 1 {
            ms[n / 2]
        } else {
            (ms[n / 2 - 1] + ms[n / 2]) / 2.0
        };
        // Nearest rank: the smallest value with at least p % of the runs at or below it.
        let rank = |p: f64| ms[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1];
        Some(Latency {
            median_ms: median,
            p10_ms: rank(10.0),
            p90_ms: rank(90.0),
            min_ms: ms[0],
            runs: n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_spread_by_nearest_rank() {
        let t: Vec<Duration> = [5, 1, 4, 2, 3, 10, 6, 7, 9, 8]
            .iter()
            .map(|&ms| Duration::from_millis(ms))
            .collect();
        let l = Latency::of(&t).unwrap();
        assert_eq!(l.median_ms, 5.5);
        assert_eq!(l.p10_ms, 1.0);
        assert_eq!(l.p90_ms, 9.0);
        assert_eq!(l.min_ms, 1.0);
        assert_eq!(l.runs, 10);
        let odd = Latency::of(&t[..3]).unwrap();
        assert_eq!(odd.median_ms, 4.0);
        assert!(Latency::of(&[]).is_none());
    }
}
