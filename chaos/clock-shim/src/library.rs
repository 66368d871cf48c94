//! Finding the preload library that cargo built.

use std::path::{Path, PathBuf};

/// File name of the preload library (the cdylib of the `clock-shim-preload` crate).
pub const LIBRARY_FILE_NAME: &str = "libclock_shim_preload.so";

/// An environment variable that, when set to an existing file, overrides where [`library_path`] looks (for a
/// runner installed away from the cargo target directory).
pub const LIBRARY_ENV: &str = "CHAOS_CLOCK_SHIM_LIBRARY";

/// The preload library to put in `LD_PRELOAD`, as an absolute path, or `None` when it has not been built.
///
/// Looks at [`LIBRARY_ENV`], then beside the running executable: `target/<profile>/deps/` first, because cargo
/// rebuilds the library there whenever `clock-shim` is built (also as a dependency of another crate), and copies
/// it to `target/<profile>/` only when `clock-shim-preload` itself is a package being built (`cargo build` of the
/// whole workspace); a copy there can be older than the one in `deps/`. Test and example executables live one
/// level deeper (`deps/`, `examples/`), so their parent is searched too.
pub fn library_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(LIBRARY_ENV).map(PathBuf::from) {
        if path.is_file() {
            return Some(absolute(&path));
        }
    }
    let exe = std::env::current_exe().ok()?;
    candidates(exe.parent()?)
        .into_iter()
        .find(|path| path.is_file())
}

/// Where the library may be, in order, for an executable in `dir`.
fn candidates(dir: &Path) -> Vec<PathBuf> {
    let mut found = vec![
        dir.join("deps").join(LIBRARY_FILE_NAME),
        dir.join(LIBRARY_FILE_NAME),
    ];
    let nested = dir
        .file_name()
        .is_some_and(|name| name == "deps" || name == "examples");
    if let (true, Some(parent)) = (nested, dir.parent()) {
        found.push(parent.join("deps").join(LIBRARY_FILE_NAME));
        found.push(parent.join(LIBRARY_FILE_NAME));
    }
    found
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_deps_before_the_profile_folder_and_climbs_out_of_deps() {
        let found = candidates(Path::new("/t/debug/deps"));
        assert_eq!(
            found[0],
            Path::new("/t/debug/deps/deps").join(LIBRARY_FILE_NAME)
        );
        assert_eq!(found[1], Path::new("/t/debug/deps").join(LIBRARY_FILE_NAME));
        assert_eq!(found[3], Path::new("/t/debug").join(LIBRARY_FILE_NAME));
        let found = candidates(Path::new("/t/debug"));
        assert_eq!(
            found,
            vec![
                Path::new("/t/debug/deps").join(LIBRARY_FILE_NAME),
                Path::new("/t/debug").join(LIBRARY_FILE_NAME)
            ]
        );
    }

    #[test]
    fn finds_the_library_cargo_built_for_this_test() {
        // `clock-shim` depends on `clock-shim-preload`, so building this test built the library into deps/.
        let path = library_path().expect("libclock_shim_preload.so next to the test executable");
        assert!(path.is_absolute(), "{}", path.display());
        assert!(path.ends_with(LIBRARY_FILE_NAME), "{}", path.display());
    }
}
