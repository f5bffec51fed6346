//! The bookkeeping rules: which journal entry a contract message makes.
//! Pure (no I/O), so the proptest can compute the expected ledger from them.
//!
//! | contract | entry |
//! |---|---|
//! | `order.shipped.v1` | Dr Accounts Receivable / Cr Sales Revenue, order total (revenue is recognised when goods ship) |
//! | `payment.captured.v1` | Dr Cash / Cr Accounts Receivable, amount captured |
//! | `payment.failed.v1`, `final: true` | Dr Bad Debt Expense / Cr Accounts Receivable, amount (the shipped order will not be paid: write the receivable off) |
//! | `payment.failed.v1`, `final: false` | nothing (the gateway retries; the receivable stays open) |
//! | `order.cancelled.v1` | nothing (an order can only be cancelled before it ships, so nothing was booked) |
//! | anything else | nothing (acked and recorded in the inbox as ignored) |

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::contracts::{
    OrderCancelled, OrderShipped, PaymentCaptured, PaymentFailed, ORDER_CANCELLED_V1,
    ORDER_SHIPPED_V1, PAYMENT_CAPTURED_V1, PAYMENT_FAILED_V1,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    Cash,
    AccountsReceivable,
    SalesRevenue,
    BadDebtExpense,
}

impl Account {
    pub const ALL: [Account; 4] = [
        Account::Cash,
        Account::AccountsReceivable,
        Account::SalesRevenue,
        Account::BadDebtExpense,
    ];

    /// The code in the `accounts` table.
    pub fn code(self) -> &'static str {
        match self {
            Account::Cash => "1000",
            Account::AccountsReceivable => "1200",
            Account::SalesRevenue => "4000",
            Account::BadDebtExpense => "6100",
        }
    }

    pub fn from_code(code: &str) -> Option<Account> {
        Account::ALL.into_iter().find(|a| a.code() == code)
    }
}

/// One journal entry to book: a debit and a credit of the same amount.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryDraft {
    pub order_id: String,
    pub currency: String,
    pub occurred_at: DateTime<Utc>,
    pub description: String,
    pub debit: Account,
    pub credit: Account,
    pub amount: Decimal,
}

#[derive(Debug, Error)]
pub enum RuleError {
    #[error("{contract} payload does not match the contract: {source}")]
    Malformed {
        contract: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{contract} carries a negative amount {amount}")]
    NegativeAmount { contract: String, amount: Decimal },
}

/// The entry a message makes, or `None` when the rules book nothing for it.
pub fn entry_for(contract: &str, payload: &[u8]) -> Result<Option<EntryDraft>, RuleError> {
    let draft = match contract {
        ORDER_SHIPPED_V1 => {
            let m: OrderShipped = parse(contract, payload)?;
            Some(EntryDraft {
                description: format!("Order {} shipped: revenue recognised", m.order_id),
                order_id: m.order_id,
                currency: m.currency,
                occurred_at: m.shipped_at,
                debit: Account::AccountsReceivable,
                credit: Account::SalesRevenue,
                amount: m.total,
            })
        }
        PAYMENT_CAPTURED_V1 => {
            let m: PaymentCaptured = parse(contract, payload)?;
            Some(EntryDraft {
                description: format!("Payment captured for order {}", m.order_id),
                order_id: m.order_id,
                currency: m.currency,
                occurred_at: m.captured_at,
                debit: Account::Cash,
                credit: Account::AccountsReceivable,
                amount: m.amount,
            })
        }
        PAYMENT_FAILED_V1 => {
            let m: PaymentFailed = parse(contract, payload)?;
            m.is_final.then(|| EntryDraft {
                description: format!(
                    "Payment for order {} failed for good ({}): receivable written off",
                    m.order_id, m.reason
                ),
                order_id: m.order_id,
                currency: m.currency,
                occurred_at: m.failed_at,
                debit: Account::BadDebtExpense,
                credit: Account::AccountsReceivable,
                amount: m.amount,
            })
        }
        ORDER_CANCELLED_V1 => {
            // Validated all the same: a malformed message is a publisher bug
            // worth a dead letter, even when it would book nothing.
            let _: OrderCancelled = parse(contract, payload)?;
            None
        }
        _ => None,
    };
    match draft {
        Some(d) if d.amount.is_sign_negative() => Err(RuleError::NegativeAmount {
            contract: contract.to_owned(),
            amount: d.amount,
        }),
        // A zero amount (a free order) is a valid fact but books no lines:
        // a journal line is a debit or a credit, never zero.
        Some(d) if d.amount.is_zero() => Ok(None),
        other => Ok(other),
    }
}

fn parse<T: DeserializeOwned>(contract: &str, payload: &[u8]) -> Result<T, RuleError> {
    serde_json::from_slice(payload).map_err(|source| RuleError::Malformed {
        contract: contract.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_books_receivable_against_revenue() {
        let payload = br#"{"order_id":"o1","customer_id":"c","currency":"EUR","total":"12.50",
            "lines":[],"shipped_at":"2026-01-01T00:00:00Z","unknown":1}"#;
        let d = entry_for(ORDER_SHIPPED_V1, payload)
            .expect("valid")
            .expect("booked");
        assert_eq!(
            (d.debit, d.credit),
            (Account::AccountsReceivable, Account::SalesRevenue)
        );
        assert_eq!(d.amount, Decimal::new(1250, 2));
    }

    #[test]
    fn non_final_failure_and_cancellation_book_nothing() {
        let failed = br#"{"order_id":"o1","payment_id":"p","amount":"5","currency":"EUR",
            "reason":"declined","final":false,"failed_at":"2026-01-01T00:00:00Z"}"#;
        assert!(entry_for(PAYMENT_FAILED_V1, failed)
            .expect("valid")
            .is_none());
        let cancelled = br#"{"order_id":"o1","reason":"x","cancelled_at":"2026-01-01T00:00:00Z"}"#;
        assert!(entry_for(ORDER_CANCELLED_V1, cancelled)
            .expect("valid")
            .is_none());
    }

    #[test]
    fn malformed_and_negative_are_errors() {
        assert!(entry_for(ORDER_SHIPPED_V1, b"{").is_err());
        let negative = br#"{"order_id":"o1","payment_id":"p","amount":"-5","currency":"EUR",
            "reference":"r","captured_at":"2026-01-01T00:00:00Z"}"#;
        assert!(matches!(
            entry_for(PAYMENT_CAPTURED_V1, negative),
            Err(RuleError::NegativeAmount { .. })
        ));
    }
}
