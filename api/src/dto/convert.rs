//! Requests to commands.
//!
//! The conversions parse each field into its domain type and name the field
//! when it does not parse. Every rule beyond a field's syntax (positive
//! quantities, the limits of `aggregates::limits`, at most 100 lines) is the
//! aggregate's, checked once, in `decide`; its refusal maps to 422 through
//! `ApiError::from_domain`.

use aggregates::limits::{check_text, MAX_REASON_CHARS};
use std::str::FromStr;

use aggregates::inventory::InventoryCommand;
use aggregates::limits::{MAX_LINE_QUANTITY, MAX_PRICE_INTEGER_DIGITS, MAX_PRICE_SCALE};
use aggregates::order::{Order, OrderCommand, OrderLine, PlaceOrder};
use aggregates::values::{Currency, PaymentMethod, Sku, Warehouse};
use aggregates::Aggregate;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::{AdjustmentRequest, OrderLineRequest, PlaceOrderRequest, ReceiptRequest};
use crate::error::ApiError;

/// A request body with the id of what it is for, which the body does not
/// carry: the order id (random, or derived from the `Idempotency-Key`), the
/// SKU (from the path). A local type, so that `TryFrom` may be implemented
/// for the domain's commands (a plain tuple would break the orphan rule).
pub struct RequestFor<'a, Id, Body>(pub Id, pub &'a Body);

/// The request as an order the aggregate accepts: parsed, then decided
/// without I/O, so that nothing (not even an idempotency claim) is stored
/// for an invalid request.
impl TryFrom<RequestFor<'_, Uuid, PlaceOrderRequest>> for PlaceOrder {
    type Error = ApiError;

    fn try_from(
        RequestFor(order_id, request): RequestFor<'_, Uuid, PlaceOrderRequest>,
    ) -> Result<Self, ApiError> {
        let invalid = ApiError::Unprocessable;
        let currency = Currency::from_str(&request.currency)
            .map_err(|error| invalid(format!("currency: {error}")))?;
        let payment_method = match &request.payment_method {
            None => PaymentMethod::default(),
            Some(method) => PaymentMethod::from_str(method)
                .map_err(|error| invalid(format!("payment_method: {error}")))?,
        };
        let lines = request
            .lines
            .iter()
            .enumerate()
            .map(|(index, line)| order_line(index, line))
            .collect::<Result<Vec<_>, ApiError>>()?;
        let place = PlaceOrder {
            order_id,
            customer_id: request.customer_id.clone(),
            currency,
            lines,
            payment_method,
        };
        Order::default()
            .decide(&OrderCommand::Place(place.clone()))
            .map_err(|error| ApiError::from_domain(error.kind(), error.to_string()))?;
        Ok(place)
    }
}

fn order_line(index: usize, line: &OrderLineRequest) -> Result<OrderLine, ApiError> {
    let invalid = ApiError::Unprocessable;
    let sku = Sku::parse(line.sku.as_str())
        .map_err(|error| invalid(format!("lines[{index}].sku: {error}")))?;
    // Zero and the upper limit are the aggregate's to refuse; what does
    // not even fit its type is refused here, in the same words.
    let quantity = u32::try_from(line.quantity).map_err(|_| {
        invalid(format!(
            "lines[{index}].quantity must be a whole number from 1 to {MAX_LINE_QUANTITY}, got {}",
            line.quantity
        ))
    })?;
    let unit_price = parse_decimal(&line.unit_price).ok_or_else(|| {
        invalid(format!(
            "lines[{index}].unit_price must be a non-negative decimal string such as \"9.99\", \
             with at most {MAX_PRICE_INTEGER_DIGITS} digits before the point and \
             {MAX_PRICE_SCALE} after it; got {:?}",
            line.unit_price
        ))
    })?;
    Ok(OrderLine {
        sku,
        quantity,
        unit_price,
    })
}

/// A price as API.md writes money: `0` or digits without a leading zero,
/// optionally a point and more digits; no sign (a price is never
/// negative), no exponent, no `_` or `+` (which `rust_decimal` alone would
/// take). What it cannot hold exactly (more than 28 digits) is `None`.
///
/// The scale and size of a price are the aggregate's rules, so what this
/// and `decide` accept together is exactly the strings matching
/// `^(0|[1-9][0-9]{0,11})(\.[0-9]{1,4})?$` (the pattern for the OpenAPI
/// document; a test below holds the two to it).
fn parse_decimal(text: &str) -> Option<Decimal> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let canonical_whole = digits(whole) && (whole == "0" || !whole.starts_with('0'));
    if !canonical_whole || fraction.is_some_and(|fraction| !digits(fraction)) {
        return None;
    }
    Decimal::from_str_exact(text).ok()
}

fn warehouse(name: Option<&str>) -> Result<Warehouse, ApiError> {
    name.map_or(Ok(Warehouse::main()), |name| {
        Warehouse::parse(name).map_err(|error| ApiError::Unprocessable(error.to_string()))
    })
}

/// A receipt of stock of `sku` (from the path).
impl TryFrom<RequestFor<'_, &Sku, ReceiptRequest>> for InventoryCommand {
    type Error = ApiError;

    fn try_from(
        RequestFor(sku, request): RequestFor<'_, &Sku, ReceiptRequest>,
    ) -> Result<Self, ApiError> {
        // Zero and the limits are the aggregate's; a negative number does
        // not fit its type.
        let quantity = u64::try_from(request.quantity).map_err(|_| {
            ApiError::Unprocessable(format!(
                "quantity must be positive, got {}",
                request.quantity
            ))
        })?;
        Ok(InventoryCommand::Receive {
            sku: sku.clone(),
            warehouse: warehouse(request.warehouse.as_deref())?,
            quantity,
        })
    }
}

/// An adjustment of the stock of `sku` (from the path).
impl TryFrom<RequestFor<'_, &Sku, AdjustmentRequest>> for InventoryCommand {
    type Error = ApiError;

    fn try_from(
        RequestFor(sku, request): RequestFor<'_, &Sku, AdjustmentRequest>,
    ) -> Result<Self, ApiError> {
        Ok(InventoryCommand::Adjust {
            sku: sku.clone(),
            warehouse: warehouse(request.warehouse.as_deref())?,
            delta: request.quantity,
            reason: reason(request.reason.as_deref())?.unwrap_or_default(),
        })
    }
}

/// A free-text `reason` (an adjustment's, a cancellation's): at most
/// [`MAX_REASON_CHARS`] characters, no control characters.
pub fn reason(text: Option<&str>) -> Result<Option<String>, ApiError> {
    match text {
        None => Ok(None),
        Some(text) => check_text(text, MAX_REASON_CHARS)
            .map(|()| Some(text.to_owned()))
            .map_err(|problem| ApiError::Unprocessable(format!("reason {problem}"))),
    }
}

#[cfg(test)]
mod tests {
    use aggregates::order::{Order, OrderCommand, OrderLine, PlaceOrder};
    use aggregates::values::{Currency, PaymentMethod, Sku};
    use aggregates::Aggregate;
    use proptest::prelude::*;

    use super::parse_decimal;

    #[test]
    fn a_price_is_canonical_digits_with_an_optional_point() {
        for (text, parsed) in [
            ("9.99", "9.99"),
            ("0", "0"),
            ("0.5", "0.5"),
            ("10", "10"),
            ("1.0000", "1.0000"),
            (
                "0.0000000000000000000000000001",
                "0.0000000000000000000000000001",
            ),
        ] {
            assert_eq!(
                parse_decimal(text)
                    .map(|value| value.to_string())
                    .as_deref(),
                Some(parsed),
                "{text}"
            );
        }
        for text in [
            "",
            "abc",
            "1_000",
            "+1",
            "-1",
            "-0",
            ".5",
            "5.",
            "1e3",
            " 9.99",
            "9.99 ",
            "1.2.3",
            "01",
            "00.5",
            "0.00000000000000000000000000001",
            "100000000000000000000000000000",
        ] {
            assert_eq!(parse_decimal(text), None, "{text:?}");
        }
    }

    /// `^(0|[1-9][0-9]{0,11})(\.[0-9]{1,4})?$`, written out by hand.
    fn matches_documented_pattern(text: &str) -> bool {
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (text, None),
        };
        let whole_ok = whole == "0"
            || (whole.len() <= 12
                && whole.starts_with(|c: char| ('1'..='9').contains(&c))
                && whole.bytes().all(|b| b.is_ascii_digit()));
        let fraction_ok = fraction.is_none_or(|fraction| {
            (1..=4).contains(&fraction.len()) && fraction.bytes().all(|b| b.is_ascii_digit())
        });
        whole_ok && fraction_ok
    }

    /// The API accepts a price when it parses and the aggregate takes it.
    fn accepted(text: &str) -> bool {
        let Some(unit_price) = parse_decimal(text) else {
            return false;
        };
        let place = PlaceOrder {
            order_id: uuid::Uuid::nil(),
            customer_id: "c".into(),
            currency: Currency::Usd,
            lines: vec![OrderLine {
                sku: Sku::parse("A").expect("valid sku"),
                quantity: 1,
                unit_price,
            }],
            payment_method: PaymentMethod::CardOk,
        };
        Order::default().decide(&OrderCommand::Place(place)).is_ok()
    }

    proptest! {
        #[test]
        fn the_prices_accepted_are_exactly_those_of_the_documented_pattern(
            text in "(-?0{0,2}[0-9]{0,14}(\\.[0-9]{0,6})?|[0-9.+_e -]{0,8})"
        ) {
            prop_assert_eq!(accepted(&text), matches_documented_pattern(&text), "{:?}", text);
        }
    }

    #[test]
    fn the_boundaries_of_the_documented_pattern() {
        for text in ["999999999999.9999", "0.0001", "0", "100000000000"] {
            assert!(accepted(text) && matches_documented_pattern(text), "{text}");
        }
        for text in ["1000000000000", "0.00001", "999999999999.99990", "-0"] {
            assert!(
                !accepted(text) && !matches_documented_pattern(text),
                "{text}"
            );
        }
    }
}
