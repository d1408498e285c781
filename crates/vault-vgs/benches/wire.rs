//! Micro-benchmarks of the connector's pure hot-path work, with the mock VGS's real
//! answers: building an insert body, parsing the answers, rebuilding a card.

use std::hint::black_box;

use criterion::Criterion;
use secrecy::SecretString;
use vault_core::{Alias, Card};
use vault_vgs::bench_support::{
    PerFieldInsert, card_from_values, parse_reveal_many, parse_reveal_one,
};

const CARD: &str = include_str!("../../../fixtures/bench/card.json");

/// The mock's answer to the insert of [`CARD`] (989 bytes, as on the wire).
const INSERT_ANSWER: &str = include_str!("../../../fixtures/bench/insert-answer.json");

/// The mock's answer to the multi-reveal of the card's persistent aliases (932 bytes).
const REVEAL_MANY_ANSWER: &str = include_str!("../../../fixtures/bench/reveal-many-answer.json");

/// The mock's answer to the reveal of the volatile CVC (197 bytes).
const REVEAL_ONE_ANSWER: &str = include_str!("../../../fixtures/bench/reveal-one-answer.json");

fn secret(value: &str) -> SecretString {
    SecretString::from(value.to_owned())
}

fn insert(c: &mut Criterion) {
    let card: Card = serde_json::from_str(CARD).expect("test card");
    c.bench_function("insert/build_request_body", |b| {
        b.iter(|| PerFieldInsert::new(black_box(&card)).body())
    });
    let plan = PerFieldInsert::new(&card);
    assert_eq!(plan.parse_answer(INSERT_ANSWER.as_bytes()).ok(), Some(5));
    c.bench_function("insert/parse_answer", |b| {
        b.iter(|| plan.parse_answer(black_box(INSERT_ANSWER.as_bytes())))
    });
    // The floor of any JSON client: read the answer without keeping anything.
    c.bench_function("insert/scan_answer_json_only", |b| {
        b.iter(|| {
            serde_json::from_slice::<serde::de::IgnoredAny>(black_box(INSERT_ANSWER.as_bytes()))
        })
    });
}

fn retrieve(c: &mut Criterion) {
    let aliases: Vec<Alias> = [
        "4111115315651111",
        "tok_sandbox_DC6an1HvYL2X8tWSQw9YaZ",
        "tok_sandbox_4PvwLrQ5WAfXmjqK1fHwKc",
        "tok_sandbox_awEEms42mULwLfMvdyfAK4",
    ]
    .iter()
    .map(|a| Alias::new(a).expect("alias"))
    .collect();
    let asked: Vec<&Alias> = aliases.iter().collect();
    assert_eq!(
        parse_reveal_many(REVEAL_MANY_ANSWER.as_bytes(), &asked).ok(),
        Some(4)
    );
    c.bench_function("retrieve/parse_reveal_many_answer", |b| {
        b.iter(|| parse_reveal_many(black_box(REVEAL_MANY_ANSWER.as_bytes()), &asked))
    });
    c.bench_function("retrieve/parse_reveal_one_answer", |b| {
        b.iter(|| parse_reveal_one(black_box(REVEAL_ONE_ANSWER.as_bytes())))
    });
    let (number, month, year, cvc, name) = (
        secret("4111111111111111"),
        secret("04"),
        secret("2030"),
        secret("987"),
        secret("Ada Lovelace"),
    );
    c.bench_function("retrieve/rebuild_validated_card", |b| {
        b.iter(|| card_from_values(black_box(&number), &month, &year, Some(&cvc), Some(&name)))
    });
}

// What `criterion_group!`/`criterion_main!` expand to, without their undocumented
// public function.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    insert(&mut criterion);
    retrieve(&mut criterion);
    criterion.final_summary();
}
