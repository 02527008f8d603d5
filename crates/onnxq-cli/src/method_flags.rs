//! Calibration settings that only some methods read: one given to a method that ignores it
//! (`--percentile` with MinMax, `--num-quantized-bins` with Percentile, ...) is an error naming
//! the setting and the methods that read it, for `calibrate` and `quantize --data` alike, so no
//! setting is silently ignored.

use anyhow::Result;

use crate::args::CalibMethod;
use crate::util::fail;

use CalibMethod::{Distribution, Entropy, Minmax, Percentile};

/// Each method-specific setting (by its clap id) with the methods that read it.
const READ_BY: &[(&str, &[CalibMethod])] = &[
    ("symmetric", &[Minmax, Percentile]),
    ("moving_average", &[Minmax]),
    ("percentile", &[Percentile]),
    ("num_bins", &[Entropy, Percentile, Distribution]),
    ("num_quantized_bins", &[Entropy]),
];

fn method_name(m: CalibMethod) -> &'static str {
    match m {
        Minmax => "minmax",
        Entropy => "entropy",
        Percentile => "percentile",
        Distribution => "distribution",
    }
}

/// Refuses the first setting in `given` (its id and how the user wrote it) that `method` does not
/// read; `method_given` says whether the method was chosen or defaulted, for the message.
pub(crate) fn check(
    method: CalibMethod,
    method_given: bool,
    given: &[(&str, String)],
) -> Result<()> {
    for (id, shown) in given {
        let Some((_, readers)) = READ_BY.iter().find(|(i, _)| i == id) else {
            continue;
        };
        if readers.contains(&method) {
            continue;
        }
        let names: Vec<&str> = readers.iter().map(|m| method_name(*m)).collect();
        let either = match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.join(""),
        };
        let chosen = if method_given { "" } else { " (the default)" };
        return Err(fail(
            format!(
                "{shown} is read only by --method {either}, and the calibration method is {}{chosen}",
                method_name(method)
            ),
            if readers.len() == 1 {
                format!("drop {shown}, or give --method {}", names[0])
            } else {
                format!(
                    "drop {shown}, or give --method with one of {}",
                    names.join(", ")
                )
            },
        ));
    }
    Ok(())
}

/// The method-specific settings among the command line's `given` ids, shown as flags.
pub(crate) fn given_flags<'a>(ids: impl Iterator<Item = &'a str>) -> Vec<(&'static str, String)> {
    ids.filter_map(|id| READ_BY.iter().find(|(i, _)| *i == id))
        .map(|(id, _)| (*id, format!("--{}", id.replace('_', "-"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_of_other_methods_are_refused() {
        let given = given_flags(["percentile", "threads"].into_iter());
        let e = check(Minmax, false, &given).unwrap_err().to_string();
        assert!(
            e.contains("--percentile is read only by --method percentile")
                && e.contains("minmax (the default)"),
            "{e}"
        );
        assert!(check(Percentile, true, &given).is_ok());
        let bins = given_flags(["num_bins"].into_iter());
        assert!(check(Minmax, true, &bins).is_err());
        assert!(check(Distribution, true, &bins).is_ok());
    }
}
