//! Card data: `CardNumber`, `Cvc`, expiry and holder name, validated at construction and
//! redacted in `Debug`/`Display` (a card number shows at most its last four digits).

use std::fmt;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};

use crate::secret::REDACTED;
use crate::validation::ValidationError;

/// A primary account number: 12 to 19 digits passing the Luhn check.
///
/// Spaces and dashes are stripped on parsing. `Debug` and `Display` show only the
/// last four digits (`CardNumber(************1111)`).
#[derive(Clone)]
pub struct CardNumber(SecretString);

impl CardNumber {
    /// Validates and wraps a card number.
    pub fn new(input: &str) -> Result<Self, ValidationError> {
        let mut digits = String::with_capacity(input.len());
        for c in input.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' => {}
                _ => return Err(ValidationError::CardNumberNotDigits),
            }
        }
        let digits = SecretString::from(digits);
        let len = digits.expose_secret().len();
        if !(12..=19).contains(&len) {
            return Err(ValidationError::CardNumberLength(len));
        }
        if !luhn_valid(digits.expose_secret()) {
            return Err(ValidationError::CardNumberLuhn);
        }
        Ok(CardNumber(digits))
    }

    /// The digits, for the one place that must send them to the vault.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// The last four digits (not sensitive on their own).
    pub fn last4(&self) -> &str {
        let digits = self.0.expose_secret();
        &digits[digits.len() - 4..]
    }

    /// The first six digits, the issuer identification number (BIN).
    pub fn bin(&self) -> &str {
        &self.0.expose_secret()[..6]
    }

    /// The number of digits.
    pub fn len(&self) -> usize {
        self.0.expose_secret().len()
    }

    /// Always false: a card number has at least 12 digits.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The masked form: one `*` per hidden digit, then the last four
    /// (`************1111`).
    pub fn masked(&self) -> String {
        let mut masked = "*".repeat(self.len() - 4);
        masked.push_str(self.last4());
        masked
    }
}

/// Whether `digits` (ASCII digits only) passes the Luhn check.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        if !b.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum % 10 == 0
}

impl PartialEq for CardNumber {
    fn eq(&self, other: &Self) -> bool {
        self.expose_secret() == other.expose_secret()
    }
}

impl Eq for CardNumber {}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber({})", self.masked())
    }
}

impl fmt::Display for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl FromStr for CardNumber {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CardNumber::new(s)
    }
}

/// A card security code: 3 or 4 digits. Never printed.
#[derive(Clone)]
pub struct Cvc(SecretString);

impl Cvc {
    /// Validates and wraps a CVC.
    pub fn new(input: &str) -> Result<Self, ValidationError> {
        let input = input.trim();
        if (3..=4).contains(&input.len()) && input.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Cvc(SecretString::from(input.to_owned())))
        } else {
            Err(ValidationError::Cvc)
        }
    }

    /// The digits, for the one place that must send them to the vault.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl PartialEq for Cvc {
    fn eq(&self, other: &Self) -> bool {
        self.expose_secret() == other.expose_secret()
    }
}

impl Eq for Cvc {}

impl fmt::Debug for Cvc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cvc({REDACTED})")
    }
}

impl fmt::Display for Cvc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl FromStr for Cvc {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cvc::new(s)
    }
}

/// An expiry month, 1 to 12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExpiryMonth(u8);

impl ExpiryMonth {
    /// Validates a month number.
    pub fn new(month: u32) -> Result<Self, ValidationError> {
        u8::try_from(month)
            .ok()
            .filter(|m| (1..=12).contains(m))
            .map(ExpiryMonth)
            .ok_or(ValidationError::ExpiryMonth)
    }

    /// The month, 1 to 12.
    pub fn get(self) -> u8 {
        self.0
    }

    /// Two digits, zero padded (`"04"`), as card networks and VGS forms expect.
    pub fn two_digits(self) -> String {
        format!("{:02}", self.0)
    }
}

impl FromStr for ExpiryMonth {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValidationError::ExpiryMonth);
        }
        s.parse::<u32>()
            .map_err(|_| ValidationError::ExpiryMonth)
            .and_then(ExpiryMonth::new)
    }
}

impl fmt::Display for ExpiryMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}", self.0)
    }
}

/// An expiry year, always held as four digits; two-digit input means 20xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExpiryYear(u16);

impl ExpiryYear {
    /// Validates a year given as 2 digits (`28` = 2028) or 4 digits (`2028`).
    pub fn new(year: u32) -> Result<Self, ValidationError> {
        match year {
            0..=99 => Ok(ExpiryYear(2000 + year as u16)),
            1000..=9999 => Ok(ExpiryYear(year as u16)),
            _ => Err(ValidationError::ExpiryYear),
        }
    }

    /// The four-digit year.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl FromStr for ExpiryYear {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if !(s.len() == 2 || s.len() == 4) || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValidationError::ExpiryYear);
        }
        s.parse::<u32>()
            .map_err(|_| ValidationError::ExpiryYear)
            .and_then(ExpiryYear::new)
    }
}

impl fmt::Display for ExpiryYear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The name on the card. Personal data, so never printed.
#[derive(Clone)]
pub struct CardHolderName(SecretString);

impl CardHolderName {
    /// The longest name accepted, in characters.
    pub const MAX_LEN: usize = 255;

    /// Validates and wraps a holder name (trimmed; 1 to 255 characters; no control
    /// characters).
    pub fn new(input: &str) -> Result<Self, ValidationError> {
        let name = input.trim();
        let len = name.chars().count();
        if len == 0 || len > Self::MAX_LEN || name.chars().any(char::is_control) {
            return Err(ValidationError::HolderName { max: Self::MAX_LEN });
        }
        Ok(CardHolderName(SecretString::from(name.to_owned())))
    }

    /// The name, for the one place that must send it.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl PartialEq for CardHolderName {
    fn eq(&self, other: &Self) -> bool {
        self.expose_secret() == other.expose_secret()
    }
}

impl Eq for CardHolderName {}

impl fmt::Debug for CardHolderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardHolderName({REDACTED})")
    }
}

impl FromStr for CardHolderName {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CardHolderName::new(s)
    }
}

/// A payment card as the orchestrator hands it in and gets it back.
///
/// Its `Debug` shows the last four digits and the expiry, never the number, the CVC
/// or the holder name.
#[derive(Clone, PartialEq, Eq)]
pub struct Card {
    /// The card number.
    pub number: CardNumber,
    /// Expiry month.
    pub exp_month: ExpiryMonth,
    /// Expiry year.
    pub exp_year: ExpiryYear,
    /// The CVC, when the orchestrator has it (or, on retrieve, while the vault still
    /// holds it: it is stored volatile and expires).
    pub cvc: Option<Cvc>,
    /// The holder name, when given.
    pub holder_name: Option<CardHolderName>,
}

impl Card {
    /// A card without CVC and holder name.
    pub fn new(number: CardNumber, exp_month: ExpiryMonth, exp_year: ExpiryYear) -> Self {
        Card {
            number,
            exp_month,
            exp_year,
            cvc: None,
            holder_name: None,
        }
    }

    /// Adds a CVC.
    pub fn with_cvc(mut self, cvc: Cvc) -> Self {
        self.cvc = Some(cvc);
        self
    }

    /// Adds a holder name.
    pub fn with_holder_name(mut self, name: CardHolderName) -> Self {
        self.holder_name = Some(name);
        self
    }
}

impl fmt::Debug for Card {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Card")
            .field("number", &self.number)
            .field("exp_month", &self.exp_month.get())
            .field("exp_year", &self.exp_year.get())
            .field("cvc", &self.cvc)
            .field("holder_name", &self.holder_name)
            .finish()
    }
}

#[cfg(feature = "serde")]
mod serde_impls {
    //! Card JSON in Hyperswitch's field names. Deserialising validates; serialising a
    //! card's secrets is only possible through the explicit [`RevealedCard`] wrapper.

    use serde::de::{self, Deserializer, Visitor};
    use serde::ser::{SerializeStruct, Serializer};
    use serde::{Deserialize, Serialize};

    use super::*;

    /// Reads a secret field from a JSON string only. A number or other type is refused
    /// without echoing it (serde's own "invalid type" message would print the value).
    struct SecretStr<T>(&'static str, std::marker::PhantomData<T>);

    impl<T> Visitor<'_> for SecretStr<T>
    where
        T: FromStr<Err = ValidationError>,
    {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{} as a JSON string", self.0)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            v.parse().map_err(E::custom)
        }

        fn visit_u64<E: de::Error>(self, _: u64) -> Result<T, E> {
            Err(E::custom(format_args!(
                "{} must be a JSON string, not a number",
                self.0
            )))
        }

        fn visit_i64<E: de::Error>(self, _: i64) -> Result<T, E> {
            Err(E::custom(format_args!(
                "{} must be a JSON string, not a number",
                self.0
            )))
        }

        fn visit_f64<E: de::Error>(self, _: f64) -> Result<T, E> {
            Err(E::custom(format_args!(
                "{} must be a JSON string, not a number",
                self.0
            )))
        }
    }

    macro_rules! secret_deserialize {
        ($ty:ty, $what:literal) => {
            impl<'de> Deserialize<'de> for $ty {
                fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                    deserializer.deserialize_any(SecretStr($what, std::marker::PhantomData))
                }
            }
        };
    }

    secret_deserialize!(CardNumber, "card number");
    secret_deserialize!(Cvc, "CVC");
    secret_deserialize!(CardHolderName, "card holder name");

    /// Accepts `4`, `"4"` or `"04"` for a month and `28`, `2028`, `"28"` for a year.
    struct NumberOrString<T>(std::marker::PhantomData<T>);

    impl<T> Visitor<'_> for NumberOrString<T>
    where
        T: FromStr<Err = ValidationError>,
    {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number or a string of digits")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            v.to_string().parse().map_err(E::custom)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            v.to_string().parse().map_err(E::custom)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            v.parse().map_err(E::custom)
        }
    }

    impl<'de> Deserialize<'de> for ExpiryMonth {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(NumberOrString(std::marker::PhantomData))
        }
    }

    impl<'de> Deserialize<'de> for ExpiryYear {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(NumberOrString(std::marker::PhantomData))
        }
    }

    impl Serialize for ExpiryMonth {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_str(&self.two_digits())
        }
    }

    impl Serialize for ExpiryYear {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_str(&self.0.to_string())
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct CardJson {
        card_number: CardNumber,
        card_exp_month: ExpiryMonth,
        card_exp_year: ExpiryYear,
        #[serde(default)]
        card_cvc: Option<Cvc>,
        #[serde(default)]
        card_holder_name: Option<CardHolderName>,
    }

    impl<'de> Deserialize<'de> for Card {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let json = CardJson::deserialize(deserializer)?;
            Ok(Card {
                number: json.card_number,
                exp_month: json.card_exp_month,
                exp_year: json.card_exp_year,
                cvc: json.card_cvc,
                holder_name: json.card_holder_name,
            })
        }
    }

    /// Serialises a card **with its secrets in clear**, in Hyperswitch's field names
    /// (`card_number`, `card_exp_month`, `card_exp_year`, `card_cvc`,
    /// `card_holder_name`). It exists so that revealing is an explicit act:
    /// `Card` itself has no `Serialize`.
    pub struct RevealedCard<'a>(pub &'a Card);

    impl Serialize for RevealedCard<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let card = self.0;
            let mut state = serializer.serialize_struct("Card", 5)?;
            state.serialize_field("card_number", card.number.expose_secret())?;
            state.serialize_field("card_exp_month", &card.exp_month)?;
            state.serialize_field("card_exp_year", &card.exp_year)?;
            match &card.cvc {
                Some(cvc) => state.serialize_field("card_cvc", cvc.expose_secret())?,
                None => state.skip_field("card_cvc")?,
            }
            match &card.holder_name {
                Some(name) => state.serialize_field("card_holder_name", name.expose_secret())?,
                None => state.skip_field("card_holder_name")?,
            }
            state.end()
        }
    }
}

#[cfg(feature = "serde")]
pub use serde_impls::RevealedCard;

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_PANS: [&str; 4] = [
        "4111111111111111",
        "5555555555554444",
        "378282246310005",
        "6011111111111117",
    ];

    #[test]
    fn public_test_pans_pass_luhn() {
        for pan in TEST_PANS {
            assert!(luhn_valid(pan), "{pan}");
            assert!(CardNumber::new(pan).is_ok());
        }
        assert!(!luhn_valid("4111111111111112"));
        assert!(!luhn_valid(""));
        assert!(!luhn_valid("41a1"));
    }

    #[test]
    fn card_number_strips_spaces_and_dashes() {
        let number = CardNumber::new("4111 1111-1111 1111").expect("valid");
        assert_eq!(number.expose_secret(), "4111111111111111");
        assert_eq!(number.last4(), "1111");
        assert_eq!(number.bin(), "411111");
    }

    #[test]
    fn card_number_errors_say_what_is_wrong() {
        let cases = [
            (
                "4111x11111111111",
                ValidationError::CardNumberNotDigits,
                "only digits",
            ),
            (
                "41111111111",
                ValidationError::CardNumberLength(11),
                "11 digits; expected 12 to 19",
            ),
            (
                "41111111111111111111",
                ValidationError::CardNumberLength(20),
                "20 digits",
            ),
            ("", ValidationError::CardNumberLength(0), "0 digits"),
            ("4111111111111112", ValidationError::CardNumberLuhn, "Luhn"),
        ];
        for (input, expected, message) in cases {
            let err = CardNumber::new(input).expect_err(input);
            assert_eq!(err, expected);
            let text = err.to_string();
            assert!(text.contains(message), "{text}");
            assert!(!text.contains("4111"), "message echoes card data: {text}");
        }
    }

    #[test]
    fn card_number_debug_and_display_show_only_last_four() {
        for pan in TEST_PANS {
            let number = CardNumber::new(pan).expect("valid");
            let last4 = &pan[pan.len() - 4..];
            for rendered in [
                format!("{number:?}"),
                format!("{number}"),
                format!("{number:#?}"),
            ] {
                assert!(!rendered.contains(pan), "{rendered}");
                assert!(!rendered.contains(&pan[..6]), "BIN leaked: {rendered}");
                assert!(rendered.ends_with(&format!("{last4})")) || rendered.ends_with(last4));
            }
        }
        let visa = CardNumber::new(TEST_PANS[0]).expect("valid");
        assert_eq!(format!("{visa:?}"), "CardNumber(************1111)");
    }

    #[test]
    fn cvc_accepts_three_or_four_digits_only() {
        assert_eq!(Cvc::new("123").expect("3").expose_secret(), "123");
        assert_eq!(Cvc::new("1234").expect("4").expose_secret(), "1234");
        for bad in ["12", "12345", "12a", "", "１２３"] {
            assert_eq!(Cvc::new(bad), Err(ValidationError::Cvc), "{bad}");
        }
        assert_eq!(
            ValidationError::Cvc.to_string(),
            "CVC must be 3 or 4 digits"
        );
        let cvc = Cvc::new("737").expect("valid");
        assert_eq!(format!("{cvc:?}"), "Cvc([REDACTED])");
        assert_eq!(format!("{cvc}"), "[REDACTED]");
    }

    #[test]
    fn expiry_month_and_year_validate() {
        assert_eq!(ExpiryMonth::new(1).expect("1").get(), 1);
        assert_eq!("04".parse::<ExpiryMonth>().expect("04").get(), 4);
        assert_eq!("12".parse::<ExpiryMonth>().expect("12").two_digits(), "12");
        for bad in ["0", "13", "", "1a", "004", "-1"] {
            assert_eq!(
                bad.parse::<ExpiryMonth>(),
                Err(ValidationError::ExpiryMonth),
                "{bad}"
            );
        }
        assert_eq!(ExpiryMonth::new(300), Err(ValidationError::ExpiryMonth));
        assert!(ValidationError::ExpiryMonth.to_string().contains("1 to 12"));

        assert_eq!("28".parse::<ExpiryYear>().expect("28").get(), 2028);
        assert_eq!("2031".parse::<ExpiryYear>().expect("2031").get(), 2031);
        assert_eq!(ExpiryYear::new(7).expect("7").get(), 2007);
        for bad in ["202", "20288", "", "2a", "+28"] {
            assert_eq!(
                bad.parse::<ExpiryYear>(),
                Err(ValidationError::ExpiryYear),
                "{bad}"
            );
        }
        assert_eq!(ExpiryYear::new(100), Err(ValidationError::ExpiryYear));
        assert!(
            ValidationError::ExpiryYear
                .to_string()
                .contains("2 or 4 digits")
        );
    }

    #[test]
    fn holder_name_validates_and_is_redacted() {
        let name = CardHolderName::new("  Ada Lovelace ").expect("valid");
        assert_eq!(name.expose_secret(), "Ada Lovelace");
        assert_eq!(format!("{name:?}"), "CardHolderName([REDACTED])");
        for bad in ["", "   ", "Ada\u{0}", &"x".repeat(256)] {
            let err = CardHolderName::new(bad).expect_err("invalid");
            assert!(err.to_string().contains("1 to 255 characters"));
        }
    }

    #[test]
    fn card_debug_prints_no_secret() {
        let card = Card::new(
            CardNumber::new("378282246310005").expect("valid"),
            ExpiryMonth::new(4).expect("valid"),
            ExpiryYear::new(2030).expect("valid"),
        )
        .with_cvc(Cvc::new("7373").expect("valid"))
        .with_holder_name(CardHolderName::new("Grace Hopper").expect("valid"));
        for rendered in [format!("{card:?}"), format!("{card:#?}")] {
            assert!(!rendered.contains("378282246310005"), "{rendered}");
            assert!(!rendered.contains("7373"), "{rendered}");
            assert!(!rendered.contains("Grace"), "{rendered}");
            assert!(rendered.contains("0005"));
            assert!(rendered.contains("2030"));
        }
    }

    #[cfg(feature = "serde")]
    #[test]
    fn card_json_uses_hyperswitch_names_and_validates() {
        let card: Card = serde_json::from_str(
            r#"{"card_number":"4111 1111 1111 1111","card_exp_month":"04","card_exp_year":28,"card_cvc":"123","card_holder_name":"Ada"}"#,
        )
        .expect("valid card json");
        assert_eq!(card.number.last4(), "1111");
        assert_eq!(card.exp_month.get(), 4);
        assert_eq!(card.exp_year.get(), 2028);
        assert_eq!(card.cvc.as_ref().map(Cvc::expose_secret), Some("123"));

        let revealed = serde_json::to_value(RevealedCard(&card)).expect("serialises");
        assert_eq!(
            revealed,
            serde_json::json!({"card_number":"4111111111111111","card_exp_month":"04","card_exp_year":"2028","card_cvc":"123","card_holder_name":"Ada"})
        );

        let unknown = serde_json::from_str::<Card>(
            r#"{"card_number":"4111111111111111","card_exp_month":4,"card_exp_year":28,"cvv":"123"}"#,
        )
        .expect_err("unknown field");
        assert!(
            unknown.to_string().contains("unknown field `cvv`"),
            "{unknown}"
        );

        let bad = serde_json::from_str::<Card>(
            r#"{"card_number":"4111111111111112","card_exp_month":4,"card_exp_year":28}"#,
        )
        .expect_err("luhn");
        assert!(bad.to_string().contains("Luhn"), "{bad}");
        assert!(!bad.to_string().contains("4111111111111112"));

        let number = serde_json::from_str::<Card>(
            r#"{"card_number":4111111111111111,"card_exp_month":4,"card_exp_year":28}"#,
        )
        .expect_err("number instead of string");
        assert!(
            number
                .to_string()
                .contains("card number must be a JSON string"),
            "{number}"
        );
        assert!(!number.to_string().contains("4111111111111111"), "{number}");

        let missing = serde_json::from_str::<Card>(r#"{"card_number":"4111111111111111"}"#)
            .expect_err("missing");
        assert!(
            missing
                .to_string()
                .contains("missing field `card_exp_month`"),
            "{missing}"
        );
    }
}
