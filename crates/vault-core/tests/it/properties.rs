//! Property tests: arbitrary (and hostile) input to every constructor and
//! deserialiser gives a value or a typed `ValidationError`, never a panic, and no error
//! message repeats a card number, CVC or secret it was given.

use proptest::prelude::*;
use vault_core::{
    Alias, AliasFormat, Card, CardHolderName, CardNumber, ConnectorAuthType, Cvc, Environment,
    ExpiryMonth, ExpiryYear, Storage, VaultId, luhn_valid,
};

fn digits_of(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn card_number_never_panics_and_never_echoes(input in ".{0,64}|[0-9 -]{10,25}") {
        match CardNumber::new(&input) {
            Ok(number) => {
                let digits = number.expose_secret();
                prop_assert!((12..=19).contains(&digits.len()));
                prop_assert!(luhn_valid(digits));
                let rendered = format!("{number:?}{number}");
                prop_assert!(!rendered.contains(digits));
            }
            Err(err) => {
                let digits = digits_of(&input);
                if digits.len() >= 6 {
                    prop_assert!(!err.to_string().contains(&digits));
                }
            }
        }
    }

    #[test]
    fn every_luhn_valid_number_of_12_to_19_digits_is_accepted(body in "[0-9]{11,18}") {
        let check = (0..10).find(|d| luhn_valid(&format!("{body}{d}"))).unwrap();
        let number = format!("{body}{check}");
        let parsed = CardNumber::new(&number).unwrap();
        prop_assert_eq!(parsed.expose_secret(), number.as_str());
    }

    #[test]
    fn small_validators_never_panic(input in "\\PC{0,40}") {
        if let Ok(cvc) = Cvc::new(&input) {
            let rendered = format!("{cvc:?}{cvc}");
            prop_assert!(!rendered.contains(cvc.expose_secret()));
        }
        if let Ok(month) = input.parse::<ExpiryMonth>() {
            prop_assert!((1..=12).contains(&month.get()));
        }
        if let Ok(year) = input.parse::<ExpiryYear>() {
            prop_assert!(year.get() >= 1000);
        }
        let _ = CardHolderName::new(&input);
        let _ = input.parse::<AliasFormat>();
        let _ = input.parse::<Storage>();
        let _ = input.parse::<Environment>();
    }

    #[test]
    fn vault_ids_and_aliases_that_parse_are_url_safe(input in "\\PC{0,40}|tnt[a-z0-9]{0,40}") {
        if let Ok(id) = VaultId::new(&input) {
            prop_assert!(id.as_str().starts_with("tnt"));
            prop_assert!(id.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        }
        if let Ok(alias) = Alias::new(&input) {
            prop_assert!(alias.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)));
        }
    }

    #[test]
    fn card_json_from_arbitrary_bytes_is_a_value_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = serde_json::from_slice::<Card>(&bytes);
        let _ = serde_json::from_slice::<ConnectorAuthType>(&bytes);
    }

    #[test]
    fn card_json_errors_never_repeat_the_card_number(
        number in "[0-9]{12,19}",
        month in "[0-9]{0,3}",
        cvc in "[0-9a-z]{0,6}",
        as_number in any::<bool>(),
    ) {
        let number_json = if as_number { number.clone() } else { format!("\"{number}\"") };
        let json = format!(r#"{{"card_number":{number_json},"card_exp_month":"{month}","card_exp_year":"2030","card_cvc":"{cvc}"}}"#);
        if let Err(err) = serde_json::from_str::<Card>(&json) {
            prop_assert!(!err.to_string().contains(&number), "{}", err);
        }
    }

    #[test]
    fn numeric_credentials_are_refused_without_echo(secret in 100_000u64..u64::MAX, field in 0usize..3) {
        let mut values = [r#""client""#.to_owned(), r#""k""#.to_owned(), r#""tntabc1""#.to_owned()];
        values[field] = secret.to_string();
        let json = format!(r#"{{"auth_type":"SignatureKey","api_key":{},"key1":{},"api_secret":{}}}"#, values[0], values[1], values[2]);
        let err = serde_json::from_str::<ConnectorAuthType>(&json).unwrap_err();
        prop_assert!(!err.to_string().contains(&secret.to_string()), "{}", err);
        prop_assert!(err.to_string().contains("must be a JSON string"), "{}", err);
    }

    #[test]
    fn truncated_auth_json_never_panics_nor_leaks(cut in 0usize..120) {
        let json = r#"{"auth_type":"SignatureKey","api_key":"client","key1":"SeCrEt-123","api_secret":"tntabc12345"}"#;
        let cut = cut.min(json.len());
        if let Err(err) = serde_json::from_str::<ConnectorAuthType>(&json[..cut]) {
            prop_assert!(!err.to_string().contains("SeCrEt-123"));
        }
    }
}
