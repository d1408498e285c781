//! Alias formats of the spec and the generators that give each its documented shape
//! (REFERENCE.md's table; "our choice" where VGS does not say).

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// The spec's `AliasFormat` enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AliasFormat {
    /// `<first_six>` + 9 alphanumerics + `<last_four>` (19 symbols).
    AlphanumericSixTFour,
    /// Vault-defined; the mock answers 400 "unsupported format".
    Custom,
    /// Digits of the account number's length, ending with its last four.
    FpeAccNumTFour,
    /// Alphanumerics of the account number's length, ending with its last four.
    FpeAlphanumericAccNumTFour,
    /// Card: first six + random middle + last four, Luhn valid, same length.
    FpeSixTFour,
    /// SSN: `xxx-xx-<last_four>`.
    FpeSsnTFour,
    /// Card: random + last four, Luhn valid, same length.
    FpeTFour,
    /// `tok_sandbox_` + 22 base58 + `_` + last four characters of the value.
    GenericTFour,
    /// Vault-defined; the mock answers 400 "unsupported format".
    Js,
    /// Card length, alphanumeric, never Luhn valid.
    NonLuhnFpeAlphanumeric,
    /// Digits, same length as the value.
    NumLengthPreserving,
    /// Card: 19 digits, prefixed `99` (our choice), Luhn valid.
    Pfpt,
    /// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (a random v4 UUID).
    RawUuid,
    /// `tok_sandbox_` + 22 base58 (the default format).
    Uuid,
    /// `vgs` + 26 alphanumerics (29 characters).
    VgsFixedLenGeneric,
}

impl AliasFormat {
    /// Every format of the spec.
    pub const ALL: [AliasFormat; 15] = [
        AliasFormat::AlphanumericSixTFour,
        AliasFormat::Custom,
        AliasFormat::FpeAccNumTFour,
        AliasFormat::FpeAlphanumericAccNumTFour,
        AliasFormat::FpeSixTFour,
        AliasFormat::FpeSsnTFour,
        AliasFormat::FpeTFour,
        AliasFormat::GenericTFour,
        AliasFormat::Js,
        AliasFormat::NonLuhnFpeAlphanumeric,
        AliasFormat::NumLengthPreserving,
        AliasFormat::Pfpt,
        AliasFormat::RawUuid,
        AliasFormat::Uuid,
        AliasFormat::VgsFixedLenGeneric,
    ];

    /// The spec's name, e.g. `FPE_SIX_T_FOUR`.
    pub fn as_str(self) -> &'static str {
        match self {
            AliasFormat::AlphanumericSixTFour => "ALPHANUMERIC_SIX_T_FOUR",
            AliasFormat::Custom => "CUSTOM",
            AliasFormat::FpeAccNumTFour => "FPE_ACC_NUM_T_FOUR",
            AliasFormat::FpeAlphanumericAccNumTFour => "FPE_ALPHANUMERIC_ACC_NUM_T_FOUR",
            AliasFormat::FpeSixTFour => "FPE_SIX_T_FOUR",
            AliasFormat::FpeSsnTFour => "FPE_SSN_T_FOUR",
            AliasFormat::FpeTFour => "FPE_T_FOUR",
            AliasFormat::GenericTFour => "GENERIC_T_FOUR",
            AliasFormat::Js => "JS",
            AliasFormat::NonLuhnFpeAlphanumeric => "NON_LUHN_FPE_ALPHANUMERIC",
            AliasFormat::NumLengthPreserving => "NUM_LENGTH_PRESERVING",
            AliasFormat::Pfpt => "PFPT",
            AliasFormat::RawUuid => "RAW_UUID",
            AliasFormat::Uuid => "UUID",
            AliasFormat::VgsFixedLenGeneric => "VGS_FIXED_LEN_GENERIC",
        }
    }

    /// The format named `name` (exact spec spelling).
    pub fn parse(name: &str) -> Option<AliasFormat> {
        AliasFormat::ALL
            .into_iter()
            .find(|format| format.as_str() == name)
    }
}

impl fmt::Display for AliasFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a value cannot get an alias in a format. The message never contains the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FormatError(pub(crate) String);

const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const UPPER_ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// The `tok_<env>_` prefix; the mock plays the sandbox environment.
const TOKEN_PREFIX: &str = "tok_sandbox_";
/// Card numbers have 12 to 19 digits (our bounds for "needs a card number").
const CARD_DIGITS: std::ops::RangeInclusive<usize> = 12..=19;

/// Checks that `value` can be aliased in `format`, without generating anything.
pub(crate) fn check(format: AliasFormat, value: &str) -> Result<(), FormatError> {
    if value.is_empty() {
        return Err(FormatError("value must not be empty".to_owned()));
    }
    match format {
        AliasFormat::Custom | AliasFormat::Js => Err(FormatError(format!(
            "unsupported format {format}: the mock has no vault-defined formats"
        ))),
        AliasFormat::FpeSixTFour
        | AliasFormat::FpeTFour
        | AliasFormat::Pfpt
        | AliasFormat::NonLuhnFpeAlphanumeric
        | AliasFormat::AlphanumericSixTFour => card_digits(format, value).map(drop),
        AliasFormat::FpeSsnTFour => ssn_digits(value).map(drop),
        AliasFormat::FpeAccNumTFour => {
            if value.len() >= 5 && value.bytes().all(|b| b.is_ascii_digit()) {
                Ok(())
            } else {
                Err(FormatError(format!(
                    "format {format} needs an account number of at least 5 digits"
                )))
            }
        }
        AliasFormat::FpeAlphanumericAccNumTFour => {
            if value.len() >= 5 && value.bytes().all(|b| b.is_ascii_alphanumeric()) {
                Ok(())
            } else {
                Err(FormatError(format!(
                    "format {format} needs an account number of at least 5 letters or digits"
                )))
            }
        }
        AliasFormat::GenericTFour => {
            if value.chars().count() >= 4 {
                Ok(())
            } else {
                Err(FormatError(format!(
                    "format {format} needs a value of at least 4 characters"
                )))
            }
        }
        AliasFormat::NumLengthPreserving
        | AliasFormat::RawUuid
        | AliasFormat::Uuid
        | AliasFormat::VgsFixedLenGeneric => Ok(()),
    }
}

/// Generates one candidate alias for `value` in `format`. The caller retries when the
/// candidate equals the value or is already taken. Call [`check`] first.
pub(crate) fn generate(
    format: AliasFormat,
    value: &str,
    rng: &mut impl Rng,
) -> Result<String, FormatError> {
    check(format, value)?;
    let alias = match format {
        AliasFormat::Uuid => format!("{TOKEN_PREFIX}{}", pick(rng, BASE58, 22)),
        AliasFormat::RawUuid => raw_uuid(rng),
        AliasFormat::NumLengthPreserving => random_digits(rng, value.chars().count()),
        AliasFormat::FpeSixTFour => {
            let card = card_digits(format, value)?;
            let mut digits = card[..6].to_vec();
            digits.extend((0..card.len() - 10).map(|_| rng.random_range(0..10u8)));
            digits.extend_from_slice(&card[card.len() - 4..]);
            let fix = card.len() - 5;
            luhn_fix(&mut digits, fix);
            to_text(&digits)
        }
        AliasFormat::FpeTFour => {
            let card = card_digits(format, value)?;
            let mut digits = vec![rng.random_range(1..10u8)];
            digits.extend((1..card.len() - 4).map(|_| rng.random_range(0..10u8)));
            digits.extend_from_slice(&card[card.len() - 4..]);
            let fix = card.len() - 5;
            luhn_fix(&mut digits, fix);
            to_text(&digits)
        }
        AliasFormat::Pfpt => {
            card_digits(format, value)?;
            let mut digits = vec![9, 9];
            digits.extend((0..17).map(|_| rng.random_range(0..10u8)));
            luhn_fix(&mut digits, 18);
            to_text(&digits)
        }
        AliasFormat::NonLuhnFpeAlphanumeric => {
            let card = card_digits(format, value)?;
            let mut alias = pick(rng, UPPER_ALNUM, card.len()).into_bytes();
            // At least one letter: never a card number, never Luhn valid.
            let at = rng.random_range(0..alias.len());
            alias[at] = LETTERS[rng.random_range(0..LETTERS.len())];
            String::from_utf8(alias).expect("ASCII alphabet")
        }
        AliasFormat::FpeSsnTFour => {
            let ssn = ssn_digits(value)?;
            let head = random_digits(rng, 5);
            let head = head.as_bytes();
            format!(
                "{}-{}-{}",
                std::str::from_utf8(&head[..3]).expect("ASCII digits"),
                std::str::from_utf8(&head[3..]).expect("ASCII digits"),
                to_text(&ssn[5..]),
            )
        }
        AliasFormat::FpeAccNumTFour => {
            let keep = &value[value.len() - 4..];
            format!("{}{keep}", random_digits(rng, value.len() - 4))
        }
        AliasFormat::FpeAlphanumericAccNumTFour => {
            let keep = &value[value.len() - 4..];
            format!("{}{keep}", pick(rng, ALNUM, value.len() - 4))
        }
        AliasFormat::GenericTFour => {
            let count = value.chars().count();
            let last_four: String = value.chars().skip(count - 4).collect();
            format!("{TOKEN_PREFIX}{}_{last_four}", pick(rng, BASE58, 22))
        }
        AliasFormat::AlphanumericSixTFour => {
            let card = card_digits(format, value)?;
            let mut middle = pick(rng, ALNUM, 9).into_bytes();
            let at = rng.random_range(0..middle.len());
            middle[at] = LETTERS[rng.random_range(0..LETTERS.len())];
            format!(
                "{}{}{}",
                to_text(&card[..6]),
                String::from_utf8(middle).expect("ASCII alphabet"),
                to_text(&card[card.len() - 4..]),
            )
        }
        AliasFormat::VgsFixedLenGeneric => format!("vgs{}", pick(rng, ALNUM, 26)),
        AliasFormat::Custom | AliasFormat::Js => {
            unreachable!("check() rejects vault-defined formats")
        }
    };
    Ok(alias)
}

/// Whether `digits` (values 0..=9) pass the Luhn check.
pub(crate) fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// Sets `digits[at]` to the one digit that makes the whole number Luhn valid.
fn luhn_fix(digits: &mut [u8], at: usize) {
    for candidate in 0..10 {
        digits[at] = candidate;
        if luhn_valid(digits) {
            return;
        }
    }
    unreachable!("exactly one digit at any position makes a number Luhn valid");
}

fn card_digits(format: AliasFormat, value: &str) -> Result<Vec<u8>, FormatError> {
    if CARD_DIGITS.contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(value.bytes().map(|b| b - b'0').collect())
    } else {
        Err(FormatError(format!(
            "format {format} needs a card number: 12 to 19 digits, nothing else"
        )))
    }
}

/// The nine digits of an SSN written `123456789` or `123-45-6789`.
fn ssn_digits(value: &str) -> Result<Vec<u8>, FormatError> {
    let plain = value.len() == 9 && value.bytes().all(|b| b.is_ascii_digit());
    let dashed = value.len() == 11
        && value.bytes().enumerate().all(|(i, b)| match i {
            3 | 6 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if plain || dashed {
        Ok(value
            .bytes()
            .filter(u8::is_ascii_digit)
            .map(|b| b - b'0')
            .collect())
    } else {
        Err(FormatError(
            "format FPE_SSN_T_FOUR needs an SSN: 9 digits, optionally written xxx-xx-xxxx"
                .to_owned(),
        ))
    }
}

fn pick(rng: &mut impl Rng, alphabet: &[u8], len: usize) -> String {
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

fn random_digits(rng: &mut impl Rng, len: usize) -> String {
    pick(rng, b"0123456789", len)
}

fn to_text(digits: &[u8]) -> String {
    digits.iter().map(|d| char::from(b'0' + d)).collect()
}

fn raw_uuid(rng: &mut impl Rng) -> String {
    let mut bytes: [u8; 16] = rng.random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const VISA: &str = "4111111111111111";
    const AMEX: &str = "378282246310005";

    fn digits(text: &str) -> Vec<u8> {
        text.bytes().map(|b| b - b'0').collect()
    }

    fn many(format: AliasFormat, value: &str) -> Vec<String> {
        let mut rng = rand::rng();
        (0..200)
            .map(|_| generate(format, value, &mut rng).expect("valid value"))
            .collect()
    }

    #[test]
    fn luhn_accepts_test_cards_and_rejects_a_changed_digit() {
        for card in [VISA, "5555555555554444", AMEX, "6011111111111117"] {
            assert!(luhn_valid(&digits(card)), "{card}");
        }
        assert!(!luhn_valid(&digits("4111111111111112")));
    }

    #[test]
    fn names_round_trip_through_parse_and_serde() {
        for format in AliasFormat::ALL {
            assert_eq!(AliasFormat::parse(format.as_str()), Some(format));
            let json = serde_json::to_string(&format).expect("serialises");
            assert_eq!(json, format!("\"{format}\""));
        }
        assert_eq!(AliasFormat::parse("uuid"), None);
    }

    #[test]
    fn uuid_is_prefix_and_22_base58() {
        for alias in many(AliasFormat::Uuid, "anything") {
            let rest = alias.strip_prefix("tok_sandbox_").expect("prefix");
            assert_eq!(rest.len(), 22);
            assert!(rest.bytes().all(|b| BASE58.contains(&b)), "{alias}");
        }
    }

    #[test]
    fn raw_uuid_is_a_v4_uuid() {
        for alias in many(AliasFormat::RawUuid, "x") {
            let groups: Vec<&str> = alias.split('-').collect();
            let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
            assert_eq!(lens, [8, 4, 4, 4, 12], "{alias}");
            assert!(alias.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit()));
            assert!(groups[2].starts_with('4'));
        }
    }

    #[test]
    fn six_t_four_keeps_bin_and_last_four_and_is_luhn_valid() {
        for card in [VISA, AMEX] {
            for alias in many(AliasFormat::FpeSixTFour, card) {
                assert_eq!(alias.len(), card.len());
                assert_eq!(alias[..6], card[..6]);
                assert_eq!(alias[alias.len() - 4..], card[card.len() - 4..]);
                assert!(luhn_valid(&digits(&alias)), "{alias}");
            }
        }
    }

    #[test]
    fn t_four_keeps_last_four_and_is_luhn_valid() {
        for alias in many(AliasFormat::FpeTFour, VISA) {
            assert_eq!(alias.len(), 16);
            assert!(alias.ends_with("1111"));
            assert!(luhn_valid(&digits(&alias)), "{alias}");
        }
    }

    #[test]
    fn pfpt_is_19_digits_prefixed_and_luhn_valid() {
        for alias in many(AliasFormat::Pfpt, AMEX) {
            assert_eq!(alias.len(), 19);
            assert!(alias.starts_with("99"));
            assert!(luhn_valid(&digits(&alias)), "{alias}");
        }
    }

    #[test]
    fn non_luhn_alphanumeric_has_card_length_and_a_letter() {
        for alias in many(AliasFormat::NonLuhnFpeAlphanumeric, VISA) {
            assert_eq!(alias.len(), 16);
            assert!(alias.bytes().any(|b| b.is_ascii_uppercase()), "{alias}");
        }
    }

    #[test]
    fn ssn_keeps_last_four_in_ssn_shape() {
        for value in ["123456789", "123-45-6789"] {
            for alias in many(AliasFormat::FpeSsnTFour, value) {
                assert_eq!(alias.len(), 11);
                assert!(alias.ends_with("-6789"), "{alias}");
                assert_eq!(&alias[3..4], "-");
            }
        }
    }

    #[test]
    fn account_formats_preserve_length_and_last_four() {
        for alias in many(AliasFormat::FpeAccNumTFour, "12345678901") {
            assert_eq!(alias.len(), 11);
            assert!(alias.ends_with("8901"));
            assert!(alias.bytes().all(|b| b.is_ascii_digit()));
        }
        for alias in many(AliasFormat::FpeAlphanumericAccNumTFour, "GB29NWBK6016") {
            assert_eq!(alias.len(), 12);
            assert!(alias.ends_with("6016"));
            assert!(alias.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn generic_t_four_appends_last_four() {
        for alias in many(AliasFormat::GenericTFour, "my secret!") {
            let rest = alias.strip_prefix("tok_sandbox_").expect("prefix");
            assert_eq!(rest.len(), 22 + 1 + 4);
            assert!(rest.ends_with("_ret!"), "{alias}");
        }
    }

    #[test]
    fn alphanumeric_six_t_four_is_19_symbols() {
        for alias in many(AliasFormat::AlphanumericSixTFour, VISA) {
            assert_eq!(alias.len(), 19);
            assert!(alias.starts_with("411111") && alias.ends_with("1111"));
            assert!(alias[6..15].bytes().any(|b| b.is_ascii_alphabetic()));
        }
    }

    #[test]
    fn fixed_len_generic_and_num_length_preserving() {
        for alias in many(AliasFormat::VgsFixedLenGeneric, "v") {
            assert_eq!(alias.len(), 29);
            assert!(alias.starts_with("vgs"));
            assert!(alias.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        for alias in many(AliasFormat::NumLengthPreserving, "héllo") {
            assert_eq!(alias.len(), 5);
            assert!(alias.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn unsuitable_values_are_refused_without_echoing_them() {
        let secret = "not-a-card-4111";
        for format in [
            AliasFormat::FpeSixTFour,
            AliasFormat::FpeTFour,
            AliasFormat::Pfpt,
            AliasFormat::NonLuhnFpeAlphanumeric,
            AliasFormat::AlphanumericSixTFour,
            AliasFormat::FpeSsnTFour,
            AliasFormat::FpeAccNumTFour,
            AliasFormat::Custom,
            AliasFormat::Js,
        ] {
            let FormatError(detail) = check(format, secret).expect_err("refused");
            assert!(!detail.contains(secret), "{detail}");
        }
        assert!(check(AliasFormat::Uuid, "").is_err());
        assert!(check(AliasFormat::GenericTFour, "abc").is_err());
        assert!(check(AliasFormat::FpeAlphanumericAccNumTFour, "ab-cd-ef").is_err());
        assert!(check(AliasFormat::FpeSixTFour, "41111111111111111111").is_err());
    }
}
