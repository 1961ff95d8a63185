//! A port of CPython 3.11's `int(text)` and `float(text)` (and the `str.strip()`
//! they are used with), the one place litebroker reproduces Python's number syntax.
//!
//! SimpleBroker 2.8.4 reads every numeric `BROKER_*` variable with plain
//! `int(os.environ.get(...))` / `float(...)`, and its time-bound parser
//! (`--since`, `--before`) calls the same `int()`/`float()` on the text it
//! has stripped. Both [`crate::config`] and [`crate::timebound`] go through
//! this module, so an input is a number in one place exactly when it is a
//! number in the other.
//!
//! What Python accepts, and so what is accepted here:
//!
//! * surrounding whitespace (ASCII and Unicode, e.g. `"\u{a0}12\u{a0}"`);
//! * a leading `+` or `-`;
//! * any Unicode decimal digit (`"٣"` is 3, `"１２"` is 12);
//! * single `_` between two digits (`"1_000"`, not `"1__0"`, `"_1"`, `"1_"`);
//! * for `float()` only: a fraction (`"1.5"`, `".5"`, `"5."`), an exponent
//!   (`"1e3"`, `"1E+3"`, `"1e1_0"`), and `inf`/`infinity`/`nan` in any case
//!   with an optional sign. A decimal that overflows is ±infinity (`"1e400"`),
//!   as in Python.
//!
//! Refused: the empty or all-blank text, `"0x10"`, `"1 2"`, and for `int()`
//! anything with a `.` or exponent (`int("1.5")` and `int("1e3")` fail).

/// CPython 3.11's default `sys.get_int_max_str_digits()`: longer integers fail.
const PY_MAX_STR_DIGITS: usize = 4300;

/// Code points of the digit zero of every Unicode `Nd` run (Unicode 14); each run is ten long.
/// Python's `int()` and `float()` accept all of these digits.
const DECIMAL_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// Python's `str.isspace()` (which `str.strip()` also uses).
pub fn is_py_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1C}'..=' '
            | '\u{85}'
            | '\u{A0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200A}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202F}'
            | '\u{205F}'
            | '\u{3000}'
    )
}

/// Python's `str.strip()` with no arguments.
pub fn py_strip(text: &str) -> &str {
    text.trim_matches(is_py_space)
}

/// The value of a Unicode decimal digit (`Nd`), as Python's `int()` reads it.
pub fn decimal_value(c: char) -> Option<u8> {
    let code = u32::from(c);
    let run = DECIMAL_ZEROS.partition_point(|&zero| zero <= code);
    let offset = code - DECIMAL_ZEROS.get(run.checked_sub(1)?)?;
    u8::try_from(offset).ok().filter(|&d| d < 10)
}

/// CPython's `_PyUnicode_TransformDecimalAndSpaceToASCII`, then its C-level
/// whitespace trim: the ASCII text `int()`/`float()` really parse. `None` when
/// a character is neither ASCII, whitespace, nor a decimal digit.
fn ascii_number_text(text: &str) -> Option<String> {
    let mut ascii = String::with_capacity(text.len());
    for c in text.chars() {
        let mapped = match c {
            '\0'..='\u{7E}' => c,
            _ if is_py_space(c) => ' ',
            _ => char::from(b'0' + decimal_value(c)?),
        };
        ascii.push(mapped);
    }
    let is_c_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\u{B}' | '\u{C}' | '\r');
    Some(ascii.trim_matches(is_c_space).to_owned())
}

/// An integer as Python's `int()` parsed it. `magnitude` saturates at
/// `u128::MAX`: callers only compare it against limits far below that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PyInt {
    /// True for a value below zero (`-0` is not negative).
    pub negative: bool,
    /// The absolute value, saturated.
    pub magnitude: u128,
}

impl PyInt {
    /// The value as an `i128`, saturated at `i128::MIN`/`i128::MAX`.
    pub fn to_i128(self) -> i128 {
        let m = i128::try_from(self.magnitude).unwrap_or(i128::MAX);
        if self.negative {
            -m
        } else {
            m
        }
    }
}

/// Python's `int(text)` (base 10); `None` where Python raises `ValueError`.
pub fn parse_int(text: &str) -> Option<PyInt> {
    let ascii = ascii_number_text(text)?;
    let (negative, body) = split_sign(&ascii);
    let mut magnitude: u128 = 0;
    let mut digits = 0;
    let mut previous = b'_'; // a leading '_' is as invalid as a doubled one
    for &byte in body.as_bytes() {
        if byte.is_ascii_digit() {
            digits += 1;
            magnitude = magnitude
                .saturating_mul(10)
                .saturating_add(u128::from(byte - b'0'));
        } else if byte != b'_' || previous == b'_' {
            return None;
        }
        previous = byte;
    }
    if previous == b'_' || digits > PY_MAX_STR_DIGITS {
        return None;
    }
    Some(PyInt {
        negative: negative && magnitude > 0,
        magnitude,
    })
}

/// Python's `float(text)`; `None` where Python raises `ValueError`. May be
/// NaN or infinite, exactly when Python's result is.
pub fn parse_float(text: &str) -> Option<f64> {
    let ascii = ascii_number_text(text)?;
    let (negative, body) = split_sign(&ascii);
    let value = match body.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ => {
            let cleaned = strip_underscores(body)?;
            if !is_decimal_literal(&cleaned) {
                return None;
            }
            cleaned.parse::<f64>().ok()?
        }
    };
    Some(if negative { -value } else { value })
}

/// `digits [. digits] [e|E [+|-] digits]` with at least one mantissa digit
/// (no sign, no underscores: those are gone already).
fn is_decimal_literal(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok =
        !(whole.is_empty() && fraction.is_empty()) && all_digits(whole) && all_digits(fraction);
    let exponent_ok = exponent.is_none_or(|e| {
        let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
        !digits.is_empty() && all_digits(digits)
    });
    mantissa_ok && exponent_ok
}

/// Removes `_` that sit between two ASCII digits; `None` for any other `_`
/// (the PEP 515 rule both `int()` and `float()` apply).
fn strip_underscores(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    for (i, &byte) in b.iter().enumerate() {
        if byte != b'_' {
            out.push(char::from(byte));
            continue;
        }
        let before = i > 0 && b[i - 1].is_ascii_digit();
        let after = b.get(i + 1).is_some_and(u8::is_ascii_digit);
        if !before || !after {
            return None;
        }
    }
    Some(out)
}

/// Splits a leading `+`/`-`; returns (is negative, rest).
fn split_sign(text: &str) -> (bool, &str) {
    match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What CPython 3.11.7 printed for `int(t)` and `float(t)` on each input
    /// (`None` = ValueError; floats compared by their bits, NaN by NaN-ness).
    #[allow(clippy::type_complexity)]
    const CPYTHON: &[(&str, Option<i128>, Option<f64>)] = &[
        (" 1_000 ", Some(1000), Some(1000.0)),
        ("1__0", None, None),
        ("+5", Some(5), Some(5.0)),
        ("-5", Some(-5), Some(-5.0)),
        ("\u{663}", Some(3), Some(3.0)),
        ("\u{661}\u{662}", Some(12), Some(12.0)),
        ("1e3", None, Some(1000.0)),
        ("inf", None, Some(f64::INFINITY)),
        ("-inf", None, Some(f64::NEG_INFINITY)),
        ("+inf", None, Some(f64::INFINITY)),
        ("Infinity", None, Some(f64::INFINITY)),
        ("infinity", None, Some(f64::INFINITY)),
        ("nan", None, Some(f64::NAN)),
        ("NaN", None, Some(f64::NAN)),
        ("-nan", None, Some(f64::NAN)),
        ("0x10", None, None),
        ("0b1", None, None),
        ("1.5", None, Some(1.5)),
        ("  ", None, None),
        ("", None, None),
        ("_1", None, None),
        ("1_", None, None),
        ("1_000.5", None, Some(1000.5)),
        ("1_.5", None, None),
        ("1._5", None, None),
        ("1e1_0", None, Some(1e10)),
        ("1_e5", None, None),
        (".5", None, Some(0.5)),
        ("5.", None, Some(5.0)),
        (".", None, None),
        ("e5", None, None),
        ("1e", None, None),
        ("1E+3", None, Some(1000.0)),
        ("\u{a0}12\u{a0}", Some(12), Some(12.0)),
        ("\t7\n", Some(7), Some(7.0)),
        ("1 2", None, None),
        ("0_0", Some(0), Some(0.0)),
        ("00", Some(0), Some(0.0)),
        ("-0", Some(0), Some(-0.0)),
        ("1e400", None, Some(f64::INFINITY)),
        ("-1e400", None, Some(f64::NEG_INFINITY)),
        ("1e-400", None, Some(0.0)),
        ("infinit", None, None),
        ("inf.", None, None),
        ("nan(1)", None, None),
        ("\u{663}.\u{665}", None, Some(3.5)),
        ("\u{ff11}\u{ff12}", Some(12), Some(12.0)),
        ("\u{ff11}_\u{ff12}", Some(12), Some(12.0)),
        ("1\u{b}", Some(1), Some(1.0)),
        ("1\u{1c}", None, None),
        ("1\u{2003}", Some(1), Some(1.0)),
        ("- 1", None, None),
        ("1_0.2_5", None, Some(10.25)),
        ("-.5", None, Some(-0.5)),
    ];

    #[test]
    fn matches_cpython_int_and_float() {
        for &(text, int, float) in CPYTHON {
            assert_eq!(parse_int(text).map(PyInt::to_i128), int, "int({text:?})");
            match (parse_float(text), float) {
                (Some(a), Some(b)) if b.is_nan() => assert!(a.is_nan(), "float({text:?})"),
                (Some(a), Some(b)) => assert_eq!(a.to_bits(), b.to_bits(), "float({text:?})"),
                (a, b) => assert_eq!(a, b, "float({text:?})"),
            }
        }
    }

    #[test]
    fn huge_integers_saturate_and_digit_limit_applies() {
        let big = "9".repeat(60);
        let v = parse_int(&big).unwrap();
        assert_eq!(v.magnitude, u128::MAX);
        assert_eq!(v.to_i128(), i128::MAX);
        assert_eq!(parse_int(&format!("-{big}")).unwrap().to_i128(), -i128::MAX);
        assert!(parse_int(&"1".repeat(4300)).is_some());
        assert!(parse_int(&"1".repeat(4301)).is_none());
    }

    #[test]
    fn decimal_digit_table() {
        assert_eq!(decimal_value('0'), Some(0));
        assert_eq!(decimal_value('9'), Some(9));
        assert_eq!(decimal_value('/'), None);
        assert_eq!(decimal_value(':'), None);
        assert_eq!(decimal_value('\u{669}'), Some(9));
        assert_eq!(decimal_value('\u{66A}'), None);
        assert_eq!(decimal_value('\u{1FBF9}'), Some(9));
        assert_eq!(decimal_value('\u{B2}'), None);
        assert!(DECIMAL_ZEROS.windows(2).all(|w| w[1] >= w[0] + 10));
    }

    #[test]
    fn strip_is_python_strip() {
        assert_eq!(py_strip("\u{3000} x \u{1c}"), "x");
        assert_eq!(py_strip("\u{200b}x"), "\u{200b}x"); // zero-width space is not a space
    }
}
