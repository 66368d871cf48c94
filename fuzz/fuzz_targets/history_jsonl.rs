//! History JSON Lines (`checker::history`): any bytes give a history or an error naming the line, never a
//! panic; a history that was read writes out and reads back to the same header and events; a small one can be
//! checked without a panic.
#![no_main]

use checker::history::History;
use checker::{check_history, Budget, CheckOptions, ModelKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The streaming reader, as `chaos check` uses it.
    if let Ok(mut reader) = checker::history::JsonlReader::new(data, "fuzz.jsonl") {
        while let Ok(Some(_)) = reader.next_event() {}
    }
    let Ok(history) = History::read_jsonl(data, "fuzz.jsonl") else {
        return;
    };
    assert_eq!(history.events.len(), history.lines.len());
    let written = history
        .write_jsonl(Vec::new())
        .expect("writing into memory cannot fail");
    let again = History::read_jsonl(&written[..], "again.jsonl").unwrap_or_else(|e| {
        panic!(
            "a history that was read does not read back after writing: {e}\n{}",
            String::from_utf8_lossy(&written)
        )
    });
    assert_eq!(
        again.header, history.header,
        "header changed by a round trip"
    );
    assert_eq!(
        again.events, history.events,
        "events changed by a round trip"
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
