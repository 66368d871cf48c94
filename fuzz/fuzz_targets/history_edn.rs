//! Jepsen `history.edn` import (`checker::edn`): any bytes give a history or an error, never a panic; an
//! imported history written as JSON Lines reads back to the same events; a small one can be checked.
#![no_main]

use checker::history::History;
use checker::{check_history, Budget, CheckOptions, ModelKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut reader) = checker::edn::EdnReader::new(data, "fuzz.edn") {
        while let Ok(Some(_)) = reader.next_event() {}
    }
    let Ok(history) = History::read_edn(data, "fuzz.edn") else {
        return;
    };
    assert_eq!(history.events.len(), history.lines.len());
    let written = history
        .write_jsonl(Vec::new())
        .expect("writing into memory cannot fail");
    let again = History::read_jsonl(&written[..], "again.jsonl").unwrap_or_else(|e| {
        panic!(
            "an imported EDN history does not read back as JSON Lines: {e}\n{}",
            String::from_utf8_lossy(&written)
        )
    });
    assert_eq!(
        again.events, history.events,
        "events changed by EDN -> JSONL"
    );
    if history.events.len() <= 64 {
        let options = CheckOptions::new(ModelKind::CasRegister).with_budget(Budget::new(
            20_000,
            16 << 20,
            None,
        ));
        let _ = check_history(&history, &options);
    }
});
