//! Field validation shared by the file readers (docs/semantics.md §1).

use tidelake_operators::{AccountId, Transaction};

use crate::dead_letter::Reason;

/// The first event time that is out of range: year 10000.
pub const MAX_TS: u64 = 253_402_300_800_000;
/// The longest account id, in bytes.
pub const MAX_ACCOUNT_ID_BYTES: usize = 128;

/// Why a field is bad: the dead letter's reason and detail.
pub type Invalid = (Reason, String);

/// Checks an account id: UTF-8, 1–128 bytes, no NUL byte. It is taken as written
/// (spaces and case are kept).
pub fn account_id(bytes: &[u8]) -> Result<AccountId, Invalid> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        (
            Reason::Encoding,
            format!("account id is not valid UTF-8 ({e})"),
        )
    })?;
    account_id_text(text)?;
    Ok(AccountId::from(text))
}

/// Checks an account id already decoded as text: 1–128 bytes, no NUL byte.
pub fn account_id_text(text: &str) -> Result<(), Invalid> {
    if text.is_empty() {
        return Err((Reason::AccountId, "account id is empty".to_owned()));
    }
    if text.len() > MAX_ACCOUNT_ID_BYTES {
        return Err((
            Reason::AccountId,
            format!(
                "account id is {} bytes, more than {MAX_ACCOUNT_ID_BYTES}",
                text.len()
            ),
        ));
    }
    if let Some(at) = memchr::memchr(0, text.as_bytes()) {
        return Err((
            Reason::AccountId,
            format!("account id has a NUL byte (\\0) at byte {at}"),
        ));
    }
    Ok(())
}

/// Parses an event time in ms, whitespace trimmed: an integer in
/// `0 ≤ ts < 253402300800000`, written as one (`1714521600000`) or in a number notation
/// whose value is one (`1.7145216e12`).
pub fn ts(text: &str) -> Result<u64, Invalid> {
    if let Some(value) = plain_digits(text.as_bytes()) {
        return ts_in_range(i128::from(value));
    }
    let text = text.trim();
    if let Some(value) = plain_digits(text.as_bytes()) {
        return ts_in_range(i128::from(value));
    }
    if let Ok(value) = text.parse::<i128>() {
        return ts_in_range(value);
    }
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => ts_number(value),
        _ => Err((
            Reason::Parse,
            format!("ts '{text}' is not an integer number of milliseconds"),
        )),
    }
}

/// The value of 1 to 18 decimal digits (which fit a u64), the usual event time, read
/// without the general parsers; `None` for anything else.
fn plain_digits(digits: &[u8]) -> Option<u64> {
    if !(1..=18).contains(&digits.len()) {
        return None;
    }
    let mut value = 0;
    let mut rest = digits;
    while let Some((eight, tail)) = rest.split_first_chunk::<8>() {
        value = value * 100_000_000 + eight_digits(u64::from_le_bytes(*eight))?;
        rest = tail;
    }
    rest.iter().try_fold(value, |value, &d| {
        d.is_ascii_digit().then(|| value * 10 + u64::from(d - b'0'))
    })
}

/// The value of eight ASCII digits read as one little-endian word (the first digit in
/// the lowest byte), `None` if a byte is not a digit: the word-at-a-time method of the
/// standard library's float parser (`core::num::dec2flt`), three multiplications for
/// eight digits.
fn eight_digits(word: u64) -> Option<u64> {
    let digits = word.wrapping_sub(0x3030_3030_3030_3030);
    // A byte below '0' borrows into its top bit; one above '9' carries into it.
    if (digits | word.wrapping_add(0x4646_4646_4646_4646)) & 0x8080_8080_8080_8080 != 0 {
        return None;
    }
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 0x000F_4240_0000_0064; // 100 + (1_000_000 << 32)
    const MUL2: u64 = 0x0000_2710_0000_0001; // 1 + (10_000 << 32)
    let pairs = digits * 10 + (digits >> 8);
    let low = (pairs & MASK).wrapping_mul(MUL1);
    let high = ((pairs >> 16) & MASK).wrapping_mul(MUL2);
    Some(u64::from((low.wrapping_add(high) >> 32) as u32))
}

/// Checks an event time given as a floating-point number: it must be a whole number
/// (every one in range is exact in a double), in `0 ≤ ts < 253402300800000`.
pub fn ts_number(value: f64) -> Result<u64, Invalid> {
    if value.fract() != 0.0 {
        return Err((
            Reason::Parse,
            format!("ts {value} is not an integer number of milliseconds"),
        ));
    }
    if !(0.0..MAX_TS as f64).contains(&value) {
        return Err((
            Reason::Ts,
            format!("ts {value:e} is outside 0 ≤ ts < {MAX_TS} (before 1970 or after 9999)"),
        ));
    }
    Ok(value as u64)
}

/// Checks that an event time is in `0 ≤ ts < 253402300800000`.
pub fn ts_in_range(value: i128) -> Result<u64, Invalid> {
    if value < 0 || value >= i128::from(MAX_TS) {
        return Err((
            Reason::Ts,
            format!("ts {value} is outside 0 ≤ ts < {MAX_TS} (before 1970 or after 9999)"),
        ));
    }
    Ok(value as u64)
}

/// Parses an amount, whitespace trimmed: a finite number.
pub fn amount(text: &str) -> Result<f64, Invalid> {
    if let Some(value) = plain_amount(text.as_bytes()) {
        return Ok(value);
    }
    let text = text.trim();
    let value: f64 = text
        .parse()
        .map_err(|_| (Reason::Parse, format!("amount '{text}' is not a number")))?;
    finite_amount(value)
}

/// The most digits [`plain_amount`] reads: their value stays below 2^53, so it is exact
/// in a double.
const PLAIN_AMOUNT_DIGITS: usize = 15;

/// Powers of ten up to 10^15, each exact in a double.
const POWERS_OF_TEN: [f64; PLAIN_AMOUNT_DIGITS + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// The value of an amount written plainly, the usual case: an optional `-`, digits, and
/// optionally `.` and more digits, 15 digits at most (`-12.34`); `None` for anything
/// else. The digits' integer and the power of ten are both exact in a double, so their
/// quotient is the correctly rounded value, the one `str::parse` gives (Clinger's fast
/// path, which the standard library takes for such input too, after a general scan).
fn plain_amount(text: &[u8]) -> Option<f64> {
    let (negative, unsigned) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let (whole, fraction) = match memchr::memchr(b'.', unsigned) {
        Some(at) => (&unsigned[..at], &unsigned[at + 1..]),
        None => (unsigned, &[][..]),
    };
    if whole.len() + fraction.len() > PLAIN_AMOUNT_DIGITS || whole.is_empty() {
        return None;
    }
    let mut digits = plain_digits(whole)?;
    if whole.len() < unsigned.len() {
        // A `.`: one or more digits follow it.
        digits = digits * 10u64.pow(fraction.len() as u32) + plain_digits(fraction)?;
    }
    let value = digits as f64 / POWERS_OF_TEN[fraction.len()];
    Some(if negative { -value } else { value })
}

/// Checks that an amount is finite.
pub fn finite_amount(value: f64) -> Result<f64, Invalid> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err((Reason::Amount, format!("amount {value} is not finite")))
    }
}

/// Builds a transaction from the three fields of a record, checking each.
pub fn transaction(
    account: &str,
    ts_field: &str,
    amount_field: &str,
) -> Result<Transaction, Invalid> {
    account_id_text(account)?;
    let ts = ts(ts_field)?;
    let amount = amount(amount_field)?;
    Ok(Transaction {
        account_id: AccountId::from(account),
        ts,
        amount,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn fields() {
        assert_eq!(account_id(b"").map_err(|e| e.0), Err(Reason::AccountId));
        assert_eq!(
            account_id(&[b'a'; 129]).map_err(|e| e.0),
            Err(Reason::AccountId)
        );
        assert!(account_id(&[b'a'; 128]).is_ok());
        assert_eq!(account_id(b"\xff").map_err(|e| e.0), Err(Reason::Encoding));
        assert_eq!(ts(" 42 "), Ok(42));
        assert_eq!(ts("007"), Ok(7));
        assert_eq!(ts("+7"), Ok(7));
        assert_eq!(ts("1.7145216e12"), Ok(1_714_521_600_000));
        assert_eq!(ts("999999999999999999").map_err(|e| e.0), Err(Reason::Ts));
        assert_eq!(ts("99999999999999999999").map_err(|e| e.0), Err(Reason::Ts));
        assert_eq!(ts("12a").map_err(|e| e.0), Err(Reason::Parse));
        assert_eq!(ts("-1").map_err(|e| e.0), Err(Reason::Ts));
        assert_eq!(ts("253402300800000").map_err(|e| e.0), Err(Reason::Ts));
        assert_eq!(ts("1.5").map_err(|e| e.0), Err(Reason::Parse));
        assert_eq!(amount("NaN").map_err(|e| e.0), Err(Reason::Amount));
        assert_eq!(amount("inf").map_err(|e| e.0), Err(Reason::Amount));
        assert_eq!(amount("12x").map_err(|e| e.0), Err(Reason::Parse));
        assert_eq!(amount("0.5"), Ok(0.5));
        assert_eq!(amount(" -7.25 "), Ok(-7.25));
        assert_eq!(amount("5."), Ok(5.0));
        assert_eq!(amount(".5"), Ok(0.5));
        assert_eq!(amount("-").map_err(|e| e.0), Err(Reason::Parse));
        assert_eq!(amount("1.2.3").map_err(|e| e.0), Err(Reason::Parse));
        assert!(amount("-0").is_ok_and(|v| v == 0.0 && v.is_sign_negative()));
    }

    /// Digits, signs, dots and other bytes around them, as a text.
    fn number_like() -> impl Strategy<Value = String> {
        let byte = prop_oneof![
            8 => b'0'..=b'9',
            1 => Just(b'.'),
            1 => Just(b'-'),
            1 => any::<u8>(),
        ];
        proptest::collection::vec(byte, 0..24)
            .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }

    proptest! {
        /// The fast paths give what the standard parsers give, for any text.
        #[test]
        fn plain_numbers_read_as_the_standard_parsers_read_them(text in number_like()) {
            let parsed = text.trim().parse::<f64>().ok().filter(|v| v.is_finite());
            let got = amount(&text).ok();
            prop_assert_eq!(got.map(f64::to_bits), parsed.map(f64::to_bits), "{:?}", text);
            if let Some(value) = plain_digits(text.as_bytes()) {
                prop_assert_eq!(Ok(value), text.parse::<u64>(), "{:?}", text);
            }
        }

        /// Every plain decimal of up to 15 digits reads exactly as `str::parse` reads it.
        #[test]
        fn plain_amounts_are_correctly_rounded(
            negative in any::<bool>(),
            whole in 0u64..1_000_000_000,
            fraction in proptest::option::of((0u64..1_000_000, 1usize..7)),
        ) {
            let mut text = format!("{}{whole}", if negative { "-" } else { "" });
            if let Some((digits, width)) = fraction {
                let digits = digits % 10u64.pow(width as u32);
                text.push_str(&format!(".{digits:0width$}"));
            }
            let expected = text.parse::<f64>().map(f64::to_bits);
            prop_assert_eq!(amount(&text).map(f64::to_bits).ok(), expected.ok(), "{}", text);
        }
    }
}
