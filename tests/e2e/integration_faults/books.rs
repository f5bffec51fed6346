//! Finance's books against orderstream's orders.

use std::collections::HashMap;

use rust_decimal::Decimal;
use serde_json::Value;

use crate::helpers::ADMIN_TOKEN;
use crate::served::Server;

async fn get(client: &reqwest::Client, server: &Server, path: &str) -> Value {
    let response = client
        .get(server.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap_or_else(|error| panic!("GET {path}: {error}"));
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.expect("a JSON body")
}

fn decimal(value: &Value) -> Decimal {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("a decimal string, got {value}"))
}

/// Checks Finance's journal against the orders' final states (keyed by
/// order id, their `/orders/{id}` bodies): each shipment, capture and final
/// payment failure booked exactly once, for the order's total, nothing
/// else; the trial balance balances with nothing left receivable. Returns
/// the entries.
pub async fn check_books(
    client: &reqwest::Client,
    finance: &Server,
    statuses: &HashMap<String, Value>,
) -> usize {
    let mut entries: HashMap<(String, String), Vec<Decimal>> = HashMap::new();
    let mut after = 0;
    loop {
        let page = get(
            client,
            finance,
            &format!("/finance/journal?after={after}&limit=500"),
        )
        .await;
        for entry in page["entries"].as_array().expect("entries") {
            let debits: Decimal = entry["lines"]
                .as_array()
                .expect("lines")
                .iter()
                .map(|line| decimal(&line["debit"]))
                .sum();
            entries
                .entry((
                    entry["order_id"].as_str().expect("order_id").to_owned(),
                    entry["contract"].as_str().expect("contract").to_owned(),
                ))
                .or_default()
                .push(debits);
        }
        match page["next_after"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
    }
    let mut booked = 0;
    for (order, body) in statuses {
        let total = decimal(&body["total"]);
        let (shipped, captured, written_off) = match body["status"].as_str() {
            Some("paid") => (true, true, false),
            Some("payment_failed") => (true, false, true),
            _ => (false, false, false),
        };
        for (contract, owed) in [
            ("order.shipped.v1", shipped),
            ("payment.captured.v1", captured),
            ("payment.failed.v1", written_off),
        ] {
            let found = entries
                .get(&(order.clone(), contract.to_owned()))
                .cloned()
                .unwrap_or_default();
            let want: Vec<Decimal> = if owed { vec![total] } else { Vec::new() };
            assert_eq!(
                found, want,
                "order {order} ({}): {contract} entries",
                body["status"]
            );
            booked += found.len();
        }
    }
    assert_eq!(
        booked,
        entries.values().map(Vec::len).sum::<usize>(),
        "entries for orders the workload never placed"
    );
    let trial_balance = get(client, finance, "/finance/trial-balance").await;
    for currency in trial_balance["currencies"].as_array().expect("currencies") {
        assert_eq!(
            decimal(&currency["total_debits"]),
            decimal(&currency["total_credits"]),
            "the books balance: {currency}"
        );
        for account in currency["accounts"].as_array().expect("accounts") {
            if account["account"] == "1200" {
                assert_eq!(
                    decimal(&account["balance"]),
                    Decimal::ZERO,
                    "receivables: {account}"
                );
            }
        }
    }
    booked
}
