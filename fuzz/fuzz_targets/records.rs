//! `dump` / `load` records: the CLI's own `parse_record` (cmd/load.rs) and
//! `dump_record` (cmd/dump.rs), compiled here unchanged through `#[path]`
//! modules with small stand-ins for the rest of the binary crate.
//!
//! Properties: never panics; an accepted record has a positive id; what
//! `dump` prints for an accepted record is accepted by `load` and yields the
//! same queue, id, body and headers (dump -> load round trip), as one line.
//!
//! If the CLI's module layout changes, adjust the stand-ins below (they only
//! need to satisfy the `use` lines of load.rs and dump.rs).
#![no_main]
#![allow(dead_code, unused_imports)]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/broker-cli/src/output.rs"]
mod output;
#[path = "../../crates/broker-cli/src/pipe.rs"]
#[allow(dead_code)]
mod pipe;

mod args {
    pub struct LoadArgs {
        pub file: String,
    }
    pub struct DumpArgs {
        pub queues: Vec<String>,
    }
}

mod exit {
    pub enum Outcome {
        Done,
    }
}

mod progress {
    pub struct Progress;
    impl Progress {
        pub fn counter(_: &str) -> Self {
            Progress
        }
        pub fn inc(&self) {}
        pub fn finish(&self) {}
    }
}

/// Stand-ins for `crate::cmd`, with the real `load` and `dump` modules inside.
#[path = "../shim/cmd.rs"]
mod cmd;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(record) = cmd::load::parse_record(line) else {
        return;
    };
    assert!(record.message.id > 0, "{line:?}");
    let mut dumped = Vec::new();
    cmd::dump::dump_record(&mut dumped, &record);
    let text = String::from_utf8(dumped).expect("dump prints UTF-8");
    let body = text.strip_suffix('\n').expect("one line per record");
    assert!(!body.contains('\n'), "dump line {text:?} spans lines");
    let again = cmd::load::parse_record(body)
        .unwrap_or_else(|e| panic!("load refuses what dump printed: {text:?}: {e}"));
    assert_eq!(again.queue, record.queue);
    assert_eq!(again.message.id, record.message.id);
    assert_eq!(again.message.body, record.message.body);
    assert_eq!(again.message.headers, record.message.headers);
});
