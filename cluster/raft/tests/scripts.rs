//! Runs every scripted scenario in `tests/scripts/`. Each file cites the paper section it checks; files named
//! `*_mutation.txt` show that the same scenario with a deliberately broken rule is caught.

use raft::sim::script::run_script;
use std::path::Path;

fn run(name: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scripts")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    if let Err(e) = run_script(&text) {
        panic!("{}: {e}", path.display());
    }
}

macro_rules! scripts {
    ($($test:ident => $file:literal),* $(,)?) => {
        $(#[test] fn $test() { run($file); })*

        #[test]
        fn every_script_file_has_a_test() {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts");
            let known = [$($file),*];
            for entry in std::fs::read_dir(dir).expect("scripts folder") {
                let name = entry.expect("dir entry").file_name().into_string().expect("utf-8 name");
                assert!(known.contains(&name.as_str()), "{name} has no test in tests/scripts.rs");
            }
        }
    };
}

scripts! {
    election => "election.txt",
    election_restriction => "election_restriction.txt",
    figure8 => "figure8.txt",
    figure8_mutation => "figure8_mutation.txt",
    prevote_checkquorum => "prevote_checkquorum.txt",
    checkquorum_mutation => "checkquorum_mutation.txt",
    log_repair => "log_repair.txt",
    log_repair_mutation => "log_repair_mutation.txt",
    transfer => "transfer.txt",
    membership => "membership.txt",
    reads => "reads.txt",
    reads_mutation => "reads_mutation.txt",
    lease => "lease.txt",
    lease_mutation => "lease_mutation.txt",
    snapshot => "snapshot.txt",
    persistence => "persistence.txt",
    persistence_mutation => "persistence_mutation.txt",
    ranked_timeouts => "ranked_timeouts.txt",
    prevote_lease_retry => "prevote_lease_retry.txt",
}

#[test]
fn a_failed_expectation_names_its_line() {
    let err = run_script("cluster 3\ncampaign 1\nstabilize\nexpect role 2 leader\n").unwrap_err();
    assert_eq!(err.line, 4);
    assert!(
        err.message.contains("expected leader, got follower"),
        "{err}"
    );
    let err = run_script("cluster 3\nfrobnicate 1\n").unwrap_err();
    assert!(err.message.contains("unknown command"), "{err}");
}
