//! Finance's database: the inbox and the journal (writes), the journal page
//! and the trial balance (queries).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgPool;

use crate::rules::EntryDraft;

/// What recording a message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// A journal entry was committed with the inbox row.
    Booked { entry_id: i64 },
    /// The rules book nothing for it; the inbox row was committed.
    Ignored,
    /// The message id was already in the inbox: a redelivery, nothing changed.
    Duplicate,
}

/// Records a message in one transaction: the inbox row and its journal
/// entry (if any) commit together or not at all, so a redelivery of a
/// committed message finds the inbox row and changes nothing, and a failed
/// one leaves no trace to block the retry.
pub async fn record(
    pool: &PgPool,
    message_id: &str,
    contract: &str,
    draft: Option<&EntryDraft>,
) -> Result<Recorded, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let outcome = if draft.is_some() { "booked" } else { "ignored" };
    let inserted = sqlx::query(
        "INSERT INTO inbox (message_id, contract, outcome) VALUES ($1, $2, $3)
         ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(message_id)
    .bind(contract)
    .bind(outcome)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        tx.rollback().await?;
        return Ok(Recorded::Duplicate);
    }
    let Some(draft) = draft else {
        tx.commit().await?;
        return Ok(Recorded::Ignored);
    };
    let entry_id: i64 = sqlx::query_scalar(
        "INSERT INTO journal_entries (message_id, contract, order_id, currency, occurred_at, description)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING entry_id",
    )
    .bind(message_id)
    .bind(contract)
    .bind(&draft.order_id)
    .bind(&draft.currency)
    .bind(draft.occurred_at)
    .bind(&draft.description)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO journal_lines (entry_id, line_no, account, debit, credit)
         VALUES ($1, 1, $2, $4, 0), ($1, 2, $3, 0, $4)",
    )
    .bind(entry_id)
    .bind(draft.debit.code())
    .bind(draft.credit.code())
    .bind(draft.amount)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Recorded::Booked { entry_id })
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JournalLine {
    pub account: String,
    pub account_name: String,
    pub debit: Decimal,
    pub credit: Decimal,
}

#[derive(Debug, Clone, Serialize, PartialEq, sqlx::FromRow)]
pub struct JournalEntry {
    pub entry_id: i64,
    pub message_id: String,
    pub contract: String,
    pub order_id: String,
    pub currency: String,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub description: String,
    #[sqlx(skip)]
    pub lines: Vec<JournalLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JournalPage {
    pub entries: Vec<JournalEntry>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}

pub const MAX_PAGE: i64 = 500;

/// Entries with `entry_id > after`, oldest first (keyset paging: a page is
/// stable while new entries are booked, and costs the same at any depth).
pub async fn journal_page(
    pool: &PgPool,
    after: i64,
    limit: i64,
) -> Result<JournalPage, sqlx::Error> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut entries: Vec<JournalEntry> = sqlx::query_as(
        "SELECT entry_id, message_id, contract, order_id, currency, occurred_at, recorded_at, description
         FROM journal_entries WHERE entry_id > $1 ORDER BY entry_id LIMIT $2",
    )
    .bind(after)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    let has_more = entries.len() as i64 > limit;
    entries.truncate(limit as usize);
    let ids: Vec<i64> = entries.iter().map(|e| e.entry_id).collect();
    let lines: Vec<(i64, String, String, Decimal, Decimal)> = sqlx::query_as(
        "SELECT l.entry_id, l.account, a.name, l.debit, l.credit
         FROM journal_lines l JOIN accounts a ON a.code = l.account
         WHERE l.entry_id = ANY($1) ORDER BY l.entry_id, l.line_no",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    for (entry_id, account, account_name, debit, credit) in lines {
        if let Some(entry) = entries.iter_mut().find(|e| e.entry_id == entry_id) {
            entry.lines.push(JournalLine {
                account,
                account_name,
                debit,
                credit,
            });
        }
    }
    let next_after = if has_more {
        entries.last().map(|e| e.entry_id)
    } else {
        None
    };
    Ok(JournalPage {
        entries,
        next_after,
    })
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AccountBalance {
    pub account: String,
    pub name: String,
    pub debits: Decimal,
    pub credits: Decimal,
    /// debits - credits (negative: a credit balance).
    pub balance: Decimal,
}

/// The trial balance of one currency: amounts in different currencies are
/// never added together.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CurrencyTrialBalance {
    pub currency: String,
    pub accounts: Vec<AccountBalance>,
    pub total_debits: Decimal,
    pub total_credits: Decimal,
}

impl CurrencyTrialBalance {
    pub fn balances(&self) -> bool {
        self.total_debits == self.total_credits
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TrialBalance {
    pub currencies: Vec<CurrencyTrialBalance>,
}

/// Totals per currency and account, read in one statement (one snapshot,
/// so a booking in flight is either wholly in it or not at all).
pub async fn trial_balance(pool: &PgPool) -> Result<TrialBalance, sqlx::Error> {
    let rows: Vec<(String, String, String, Decimal, Decimal)> = sqlx::query_as(
        "SELECT e.currency, l.account, a.name, sum(l.debit), sum(l.credit)
         FROM journal_lines l
         JOIN journal_entries e ON e.entry_id = l.entry_id
         JOIN accounts a ON a.code = l.account
         GROUP BY e.currency, l.account, a.name
         ORDER BY e.currency, l.account",
    )
    .fetch_all(pool)
    .await?;
    let mut currencies: Vec<CurrencyTrialBalance> = Vec::new();
    for (currency, account, name, debits, credits) in rows {
        if currencies.last().map(|c| &c.currency) != Some(&currency) {
            currencies.push(CurrencyTrialBalance {
                currency: currency.clone(),
                accounts: Vec::new(),
                total_debits: Decimal::ZERO,
                total_credits: Decimal::ZERO,
            });
        }
        if let Some(tb) = currencies.last_mut() {
            tb.total_debits += debits;
            tb.total_credits += credits;
            tb.accounts.push(AccountBalance {
                account,
                name,
                debits,
                credits,
                balance: debits - credits,
            });
        }
    }
    Ok(TrialBalance { currencies })
}

/// How many messages the inbox holds (booked + ignored).
pub async fn inbox_count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM inbox")
        .fetch_one(pool)
        .await
}

/// How many journal entries there are.
pub async fn entry_count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM journal_entries")
        .fetch_one(pool)
        .await
}
