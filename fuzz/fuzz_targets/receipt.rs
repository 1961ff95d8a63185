//! Lease receipts (`ack`, `nack`, `extend` operands).
//!
//! Properties: never panics; an accepted receipt prints back to a receipt that
//! parses to the same value; every receipt the broker can print parses back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use litebroker::Receipt;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(receipt) = text.parse::<Receipt>() {
            let printed = receipt.to_string();
            assert_eq!(
                printed.parse::<Receipt>(),
                Ok(receipt),
                "{text:?} -> {printed:?}"
            );
        }
    }
    if data.len() >= 20 {
        let receipt = Receipt {
            id: i64::from_le_bytes(data[0..8].try_into().unwrap()) & i64::MAX,
            receives: u32::from_le_bytes(data[8..12].try_into().unwrap()),
            nonce: u64::from_le_bytes(data[12..20].try_into().unwrap()),
        };
        let printed = receipt.to_string();
        assert_eq!(printed.parse::<Receipt>(), Ok(receipt), "{printed:?}");
    }
});
