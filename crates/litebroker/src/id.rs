//! Message ids: 64-bit hybrid timestamps, exactly the reference's encoding.
//!
//! An id is Unix time in nanoseconds with the low 12 bits replaced by a logical
//! counter, so ids are unique, ordered, and readable as a time. The high-water
//! mark lives in `meta.last_ts`, shared with every other process (Python ones
//! included), so the generator here is a pure function of "now" and "last".

use std::time::{SystemTime, UNIX_EPOCH};

/// Bits of an id that hold the logical counter.
pub const COUNTER_BITS: u32 = 12;
/// Mask selecting the logical counter of an id.
pub const COUNTER_MASK: i64 = (1 << COUNTER_BITS) - 1;

/// The current Unix time in nanoseconds.
pub fn now_ns() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
}

/// The id that follows `last` at wall-clock time `now_ns`, or `None` when the
/// counter of `last`'s time bucket is exhausted and the clock has not yet moved
/// past it (the caller waits for the next bucket).
///
/// Never returns more than `max(bucket(now), last + 1)`: a writer must not push
/// the shared high-water mark into the future, or the reference could not write
/// until the clock caught up.
pub fn next_id(now_ns: i64, last: i64) -> Option<i64> {
    let now_base = now_ns & !COUNTER_MASK;
    if now_base > last & !COUNTER_MASK {
        return Some(now_base);
    }
    if last & COUNTER_MASK < COUNTER_MASK {
        return Some(last + 1);
    }
    None
}

/// The next id after `last`, waiting (briefly) for the clock if the current
/// bucket's 4096 counters are used up.
pub fn next_id_now(last: i64) -> i64 {
    loop {
        if let Some(id) = next_id(now_ns(), last) {
            return id;
        }
        std::hint::spin_loop();
    }
}

/// Returns once the clock has passed `last_id`. A writer that hands out a
/// block of consecutive ids runs ahead of the clock by one nanosecond per id;
/// waiting it out keeps `meta.last_ts` from being left in the future, where
/// the reference's writer could not follow it. Short waits spin, long ones
/// (a replay of millions) sleep.
pub fn wait_until_past(last_id: i64) {
    loop {
        let ahead = last_id - now_ns();
        if ahead < 0 {
            return;
        }
        if ahead > 200_000 {
            std::thread::sleep(std::time::Duration::from_micros(50));
        } else {
            std::hint::spin_loop();
        }
    }
}

/// The Unix time in nanoseconds (bucket start) at which `id` was generated.
pub fn id_time_ns(id: i64) -> i64 {
    id & !COUNTER_MASK
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_795_000_000_000_000_000;

    #[test]
    fn new_bucket_resets_counter() {
        let last = (T & !COUNTER_MASK) | 7;
        let later = T + 10_000;
        assert_eq!(next_id(later, last), Some(later & !COUNTER_MASK));
    }

    #[test]
    fn same_bucket_increments_counter() {
        let last = (T & !COUNTER_MASK) | 7;
        assert_eq!(next_id(T, last), Some(last + 1));
    }

    #[test]
    fn clock_behind_last_never_goes_backwards() {
        let last = T + 1_000_000;
        assert_eq!(next_id(T, last), Some(last + 1));
    }

    #[test]
    fn exhausted_counter_waits() {
        let last = (T & !COUNTER_MASK) | COUNTER_MASK;
        assert_eq!(next_id(T, last), None);
        assert!(next_id(T + 5000, last).unwrap() > last);
    }

    #[test]
    fn ids_are_strictly_increasing() {
        let mut last = 0;
        for _ in 0..10_000 {
            let id = next_id_now(last);
            assert!(id > last);
            last = id;
        }
    }

    #[test]
    fn id_time_clears_counter() {
        assert_eq!(id_time_ns(T | 5), T & !COUNTER_MASK);
    }
}
