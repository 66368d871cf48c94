//! Plan TOML (`chaos::plan::Plan::parse`): any text gives a validated plan or an error naming the line and
//! field, never a panic; a plan that parses can be scheduled (as `chaos validate` and `chaos run` do).
#![no_main]

use chaos::plan::Plan;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(plan) = Plan::parse(text, "fuzz.toml") else {
        return;
    };
    let _ = plan.total();
    let seed = plan.seed.unwrap_or(7);
    let _ = chaos::schedule::schedule(&plan, seed);
});
