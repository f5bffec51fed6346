//! The bounds of every quantity and amount the domain accepts.
//!
//! They are chosen so that no sum the service ever forms can overflow or
//! round: not in the aggregates (`u64` stock, `Decimal` money), not in the
//! read models (`BIGINT` stock levels and history, summed over a SKU's
//! warehouses), not in an order's total. A command beyond a bound is
//! refused with a typed error (HTTP 422); nothing is clamped or rounded.
//!
//! Stock. On hand is at most [`MAX_ON_HAND_PER_WAREHOUSE`] in one warehouse
//! and [`MAX_ON_HAND_PER_SKU`] over all warehouses of a SKU, checked by the
//! Inventory aggregate on every receipt and upward adjustment (the only
//! commands that raise on hand). Reserved stock never exceeds on hand, so
//! every per-warehouse level and every per-SKU total, on hand or reserved,
//! is at most 10^14: 92,233 times below `i64::MAX`, the largest `BIGINT`.
//!
//! Money. A unit price has at most [`MAX_PRICE_SCALE`] decimal places and is
//! at most [`MAX_UNIT_PRICE`] (12 digits before the point, so at most 16
//! significant digits). With at most [`MAX_LINES`] lines of at most
//! [`MAX_LINE_QUANTITY`] units, an order total is below
//! 100 * 10^6 * 10^12 = 10^20 with at most 4 decimal places: a mantissa below
//! 10^24, far inside the 96 bits (about 7.9 * 10^28) `rust_decimal` holds
//! without rounding. The order aggregate still checks every total against a
//! wide integer computation, so a total is exact by construction and by test.

use rust_decimal::Decimal;

/// Most lines an order may have.
pub const MAX_LINES: usize = 100;

/// Most units one order line may ask for.
pub const MAX_LINE_QUANTITY: u32 = 1_000_000;

/// Most decimal places of a unit price (`"9.9999"`). A price written with
/// more, even trailing zeros, is refused, never rounded.
pub const MAX_PRICE_SCALE: u32 = 4;

/// Most digits before the decimal point of a unit price.
pub const MAX_PRICE_INTEGER_DIGITS: u32 = 12;

/// The largest unit price: `999999999999.9999`.
pub const MAX_UNIT_PRICE: Decimal = Decimal::from_parts(0x6FC0_FFFF, 0x0023_86F2, 0, false, 4);

/// Most characters of a customer id.
pub const MAX_CUSTOMER_ID_CHARS: usize = 128;

/// Most characters of a free-text reason (a cancellation, an adjustment).
pub const MAX_REASON_CHARS: usize = 500;

/// What is wrong with a piece of text a client sent, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextProblem {
    #[error("is longer than {max} characters")]
    TooLong { max: usize },
    /// Control characters (Unicode `Cc`, NUL among them: PostgreSQL cannot
    /// store it in JSON) have no place in a name or a one-line reason.
    #[error("contains a control character")]
    ControlCharacter,
    #[error("is empty or only spaces")]
    Blank,
}

/// At most `max_chars` characters, none of them a control character.
pub fn check_text(text: &str, max_chars: usize) -> Result<(), TextProblem> {
    if text.chars().count() > max_chars {
        return Err(TextProblem::TooLong { max: max_chars });
    }
    if text.chars().any(char::is_control) {
        return Err(TextProblem::ControlCharacter);
    }
    Ok(())
}

/// Most units one receipt or one adjustment (either way) may move.
pub const MAX_STOCK_MOVEMENT: u64 = 1_000_000_000_000;

/// Most units of one SKU on hand in one warehouse.
pub const MAX_ON_HAND_PER_WAREHOUSE: u64 = 10_000_000_000_000;

/// Most units of one SKU on hand over all its warehouses together.
pub const MAX_ON_HAND_PER_SKU: u64 = 100_000_000_000_000;

// The arguments above, checked by the compiler: changing a limit so that
// they no longer hold does not build.
const _: () = {
    assert!(MAX_STOCK_MOVEMENT <= MAX_ON_HAND_PER_WAREHOUSE);
    assert!(MAX_ON_HAND_PER_WAREHOUSE <= MAX_ON_HAND_PER_SKU);
    // Every stock level and sum fits a BIGINT with a margin of 10^4.
    assert!(MAX_ON_HAND_PER_SKU as u128 * 10_000 <= i64::MAX as u128);
    assert!(MAX_UNIT_PRICE.scale() == MAX_PRICE_SCALE);
    assert!(MAX_UNIT_PRICE.mantissa() < 10i128.pow(MAX_PRICE_INTEGER_DIGITS + MAX_PRICE_SCALE));
    // The largest total, in units of 10^-MAX_PRICE_SCALE, fits the 96-bit
    // mantissa of a Decimal with room to spare: it is never rounded.
    let largest_total = MAX_UNIT_PRICE.mantissa() * MAX_LINE_QUANTITY as i128 * MAX_LINES as i128;
    assert!(largest_total < 1 << 96);
};
