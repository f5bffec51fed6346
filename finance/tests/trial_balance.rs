//! The trial balance balances, and equals what the rules say, after any
//! flow of messages: duplicates, any order, ignored and malformed ones.

mod common;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use common::{cancelled, captured, failed, shipped, Message};
use finance::consumer;
use finance::rules::{self, Account};
use proptest::prelude::*;
use rust_decimal::Decimal;
use test_support::TestDatabase;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
});

#[derive(Debug, Clone)]
enum Fact {
    Shipped(i64),
    Captured(i64),
    Failed(i64, bool),
    Cancelled,
    Malformed,
}

fn fact() -> impl Strategy<Value = Fact> {
    prop_oneof![
        (0i64..100_000).prop_map(Fact::Shipped),
        (0i64..100_000).prop_map(Fact::Captured),
        ((0i64..100_000), any::<bool>()).prop_map(|(a, f)| Fact::Failed(a, f)),
        Just(Fact::Cancelled),
        Just(Fact::Malformed),
    ]
}

fn message(order: usize, fact: &Fact) -> Message {
    let order_id = format!("o-{order}");
    match fact {
        Fact::Shipped(cents) => shipped(&order_id, Decimal::new(*cents, 2)),
        Fact::Captured(cents) => captured(&order_id, Decimal::new(*cents, 2)),
        Fact::Failed(cents, is_final) => failed(&order_id, Decimal::new(*cents, 2), *is_final),
        Fact::Cancelled => cancelled(&order_id),
        Fact::Malformed => {
            let mut m = shipped(&order_id, Decimal::ONE);
            m.payload = "{\"order_id\": 1".into();
            m
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_trial_balance_balances_and_matches_the_rules(
        facts in prop::collection::vec(fact(), 1..40),
        duplicates in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
        shuffle_seed in any::<u64>(),
    ) {
        let messages: Vec<Message> = facts.iter().enumerate().map(|(i, f)| message(i % 7, f)).collect();
        // Expected balances per account from the pure rules, each message once.
        let mut expected: BTreeMap<Account, Decimal> = BTreeMap::new();
        for m in &messages {
            if let Ok(Some(entry)) = rules::entry_for(m.contract, m.payload.as_bytes()) {
                *expected.entry(entry.debit).or_default() += entry.amount;
                *expected.entry(entry.credit).or_default() -= entry.amount;
            }
        }
        // Delivered with duplicates, in a shuffled order.
        let mut deliveries: Vec<&Message> = messages.iter().collect();
        deliveries.extend(duplicates.iter().map(|i| &messages[i.index(messages.len())]));
        let mut state = shuffle_seed | 1;
        for i in (1..deliveries.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            deliveries.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let balance = RUNTIME.block_on(async {
            let db = TestDatabase::new(&finance::MIGRATOR).await.expect("database");
            for m in &deliveries {
                // Malformed payloads fail (and would be retried, then
                // dead-lettered); they book nothing.
                let _ = consumer::book(db.pool(), Some(&m.message_id), m.contract, m.payload.as_bytes()).await;
            }
            finance::ledger::trial_balance(db.pool()).await.expect("trial balance")
        });
        for currency in &balance.currencies {
            prop_assert!(currency.balances(), "debits {} != credits {}", currency.total_debits, currency.total_credits);
        }
        let actual: BTreeMap<Account, Decimal> = balance
            .currencies
            .iter()
            .flat_map(|c| c.accounts.iter())
            .filter_map(|a| Account::from_code(&a.account).map(|acc| (acc, a.balance)))
            .collect();
        for account in Account::ALL {
            prop_assert_eq!(
                actual.get(&account).copied().unwrap_or_default(),
                expected.get(&account).copied().unwrap_or_default(),
                "account {:?}", account
            );
        }
    }
}
