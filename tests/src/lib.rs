//! Test support shared by every crate's tests (as a dev-dependency) and vaultlink's
//! end-to-end suite in `e2e/`: generated test cards, TRACE log capture, token answers.

pub mod logs;
pub mod tokens;

use vault_core::{Card, CardNumber, Cvc, ExpiryMonth, ExpiryYear};

/// The `i`-th generated Visa test card: a distinct, Luhn-valid 16-digit number for
/// every `i` below 10^8, a 4-digit CVC distinct for every `i` below 10^4, and an expiry
/// shared with many other cards (as real expiries are).
pub fn card(i: u64) -> Card {
    let body = format!("4{:014}", 10_000_000 + i);
    let number = format!("{body}{}", luhn_check_digit(&body));
    Card::new(
        CardNumber::new(&number).expect("generated numbers pass Luhn"),
        ExpiryMonth::new((i % 12) as u32 + 1).expect("1..=12"),
        ExpiryYear::new(2030 + (i % 5) as u32).expect("four digits"),
    )
    .with_cvc(Cvc::new(&format!("{:04}", i % 10_000)).expect("four digits"))
}

/// The digit that makes `digits` followed by it pass the Luhn check.
pub fn luhn_check_digit(digits: &str) -> u32 {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_cards_are_valid_and_distinct() {
        let a = card(0);
        let b = card(1);
        assert_ne!(a.number, b.number);
        assert!(vault_core::luhn_valid(a.number.expose_secret()));
        assert_eq!(luhn_check_digit("411111111111111"), 1);
    }
}
