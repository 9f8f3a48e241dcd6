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
    // The usual event time: plain digits, read as they are.
    if let Ok(value) = lexical_core::parse::<u64>(text.as_bytes()) {
        return ts_in_range(i128::from(value));
    }
    let text = text.trim();
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

/// Parses an amount, whitespace trimmed: a finite number. `lexical_core` (arrow's number
/// parser) reads the same syntax as `str::parse`, to the same correctly rounded value,
/// and faster; text with spaces around it takes `str::parse` after trimming.
pub fn amount(text: &str) -> Result<f64, Invalid> {
    let value = match lexical_core::parse::<f64>(text.as_bytes()) {
        Ok(value) => value,
        Err(_) => {
            let text = text.trim();
            text.parse()
                .map_err(|_| (Reason::Parse, format!("amount '{text}' is not a number")))?
        }
    };
    finite_amount(value)
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

    /// Digits, signs, dots, exponents and other bytes around them, as a text.
    fn number_like() -> impl Strategy<Value = String> {
        let byte = prop_oneof![
            8 => b'0'..=b'9',
            1 => Just(b'.'),
            1 => Just(b'-'),
            1 => Just(b'+'),
            1 => Just(b'e'),
            1 => any::<u8>(),
        ];
        proptest::collection::vec(byte, 0..24)
            .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }

    proptest! {
        /// `lexical_core` gives what the standard parsers give, for any text.
        #[test]
        fn plain_numbers_read_as_the_standard_parsers_read_them(text in number_like()) {
            let parsed = text.trim().parse::<f64>().ok().filter(|v| v.is_finite());
            let got = amount(&text).ok();
            prop_assert_eq!(got.map(f64::to_bits), parsed.map(f64::to_bits), "{:?}", text);
            if let Ok(value) = lexical_core::parse::<u64>(text.as_bytes()) {
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
