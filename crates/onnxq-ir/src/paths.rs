//! Path rules shared by load and save: where external data may live (a relative path without `..`
//! that resolves, links included, inside the model's folder) and a file's folder.

use std::path::{Component, Path, PathBuf};

/// Joins an external-data `location` to the model folder, refusing anything that could leave it:
/// absolute paths, `..`, and links that resolve outside the folder.
pub(crate) fn safe_join(dir: &Path, location: &str) -> Result<PathBuf, String> {
    check_location(location)?;
    let path = dir.join(location);
    let root = dir
        .canonicalize()
        .map_err(|e| format!("cannot resolve the model folder `{}`: {e}", dir.display()))?;
    let real = path
        .canonicalize()
        .map_err(|e| format!("cannot open data file `{location}`: {e}"))?;
    if !real.starts_with(&root) {
        return Err(format!(
            "external data location `{location}` resolves to `{}`, outside the model's folder",
            real.display()
        ));
    }
    Ok(real)
}

/// Checks that an external-data location is a non-empty relative path with no `..`.
pub(crate) fn check_location(location: &str) -> Result<(), String> {
    if location.is_empty() {
        return Err("has an empty external data location".into());
    }
    if Path::new(location)
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "external data location `{location}` is absolute or contains `..`; it must stay inside the model's folder"
        ));
    }
    Ok(())
}

/// The folder a file is in; `.` for a bare file name (whose `parent()` is empty).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}
