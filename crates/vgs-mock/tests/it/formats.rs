//! Every alias format of the spec, through the API: documented shape, never equal to
//! the value, 400 for values a format cannot take and for vault-defined formats.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{Mock, item};

fn luhn_valid(number: &str) -> bool {
    let mut sum = 0;
    for (i, c) in number.chars().rev().enumerate() {
        let mut d = c.to_digit(10).expect("digit");
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

fn is_base58(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_ascii_alphanumeric() && !"0OIl".contains(c))
}

async fn alias_of(mock: &Mock, value: &str, format: &str) -> String {
    let aliases = mock.create(vec![item(value, format, "PERSISTENT")]).await;
    let alias = aliases[0].clone();
    assert_ne!(alias, value, "{format}: an alias never equals its value");
    alias
}

#[tokio::test]
async fn each_format_has_its_documented_shape() {
    let mock = Mock::demo();
    let visa = "4111111111111111";
    let amex = "378282246310005";

    let uuid = alias_of(&mock, "a@b.c", "UUID").await;
    let rest = uuid.strip_prefix("tok_sandbox_").unwrap();
    assert!(rest.len() == 22 && is_base58(rest), "{uuid}");

    let raw = alias_of(&mock, "raw", "RAW_UUID").await;
    let lens: Vec<usize> = raw.split('-').map(str::len).collect();
    assert_eq!(lens, [8, 4, 4, 4, 12], "{raw}");

    let num = alias_of(&mock, "12345678", "NUM_LENGTH_PRESERVING").await;
    assert!(
        num.len() == 8 && num.chars().all(|c| c.is_ascii_digit()),
        "{num}"
    );

    for card in [visa, amex] {
        let six = alias_of(&mock, card, "FPE_SIX_T_FOUR").await;
        assert_eq!(six.len(), card.len());
        assert_eq!(six[..6], card[..6]);
        assert_eq!(six[six.len() - 4..], card[card.len() - 4..]);
        assert!(luhn_valid(&six), "{six}");

        let t4 = alias_of(&mock, card, "FPE_T_FOUR").await;
        assert_eq!(t4.len(), card.len());
        assert_eq!(t4[t4.len() - 4..], card[card.len() - 4..]);
        assert!(luhn_valid(&t4), "{t4}");

        let pfpt = alias_of(&mock, card, "PFPT").await;
        assert!(pfpt.len() == 19 && luhn_valid(&pfpt), "{pfpt}");

        let non_luhn = alias_of(&mock, card, "NON_LUHN_FPE_ALPHANUMERIC").await;
        assert_eq!(non_luhn.len(), card.len());
        assert!(
            non_luhn.chars().any(|c| c.is_ascii_alphabetic()),
            "{non_luhn}"
        );

        let alnum = alias_of(&mock, card, "ALPHANUMERIC_SIX_T_FOUR").await;
        assert_eq!(alnum.len(), 19);
        assert!(alnum.starts_with(&card[..6]) && alnum.ends_with(&card[card.len() - 4..]));
    }

    let ssn = alias_of(&mock, "123-45-6789", "FPE_SSN_T_FOUR").await;
    let b = ssn.as_bytes();
    assert!(
        ssn.len() == 11 && b[3] == b'-' && b[6] == b'-' && ssn.ends_with("6789"),
        "{ssn}"
    );

    let acc = alias_of(&mock, "000123456789", "FPE_ACC_NUM_T_FOUR").await;
    assert!(acc.len() == 12 && acc.ends_with("6789") && acc.chars().all(|c| c.is_ascii_digit()));

    let alnum_acc = alias_of(
        &mock,
        "DE89370400440532013000",
        "FPE_ALPHANUMERIC_ACC_NUM_T_FOUR",
    )
    .await;
    assert!(
        alnum_acc.len() == 22 && alnum_acc.ends_with("3000"),
        "{alnum_acc}"
    );

    let generic = alias_of(&mock, "my-password", "GENERIC_T_FOUR").await;
    let rest = generic.strip_prefix("tok_sandbox_").unwrap();
    let (random, last_four) = rest.split_at(22);
    assert!(is_base58(random) && last_four == "_word", "{generic}");

    let fixed = alias_of(&mock, "v", "VGS_FIXED_LEN_GENERIC").await;
    assert!(fixed.len() == 29 && fixed.starts_with("vgs"), "{fixed}");
    assert!(fixed.chars().all(|c| c.is_ascii_alphanumeric()));
}

#[tokio::test]
async fn card_formats_refuse_values_that_are_not_card_numbers() {
    let mock = Mock::demo();
    for format in [
        "FPE_SIX_T_FOUR",
        "FPE_T_FOUR",
        "PFPT",
        "NON_LUHN_FPE_ALPHANUMERIC",
        "ALPHANUMERIC_SIX_T_FOUR",
    ] {
        for value in ["4111-1111-1111-1111", "41111", "john@example.com"] {
            let reply = mock
                .v1(
                    Method::POST,
                    "/aliases",
                    Some(json!({"data": [item(value, format, "PERSISTENT")]})),
                )
                .await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{format} {value}");
            let detail = reply.detail();
            assert!(detail.contains("needs a card number"), "{detail}");
            assert!(!detail.contains(value));
        }
    }
}

#[tokio::test]
async fn vault_defined_formats_are_unsupported() {
    let mock = Mock::demo();
    for format in ["CUSTOM", "JS"] {
        let reply = mock
            .v1(
                Method::POST,
                "/aliases",
                Some(json!({"data": [item("x", format, "PERSISTENT")]})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert!(
            reply.detail().starts_with("data[0]: unsupported format"),
            "{}",
            reply.detail()
        );
    }
}

#[tokio::test]
async fn a_short_value_that_runs_out_of_aliases_is_400_not_a_hang() {
    let mock = Mock::demo();
    // There are only ten one-digit aliases: eleven one-character values cannot all
    // get one, and the mock says so instead of looping.
    let mut refused = 0;
    for letter in 'a'..='k' {
        let reply = mock
            .v1(
                Method::POST,
                "/aliases",
                Some(json!({"data": [item(&letter.to_string(), "NUM_LENGTH_PRESERVING", "PERSISTENT")]})),
            )
            .await;
        if reply.status == StatusCode::BAD_REQUEST {
            refused += 1;
        } else {
            assert_eq!(reply.status, StatusCode::CREATED);
        }
    }
    assert!(refused >= 1);
    assert!(mock.state.record_count(vgs_mock::DEMO_VAULT_ID).unwrap() <= 10);
}
