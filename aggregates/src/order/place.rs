//! Placing an order: the checks of each line against [`crate::limits`] and
//! the exact total.

use rust_decimal::Decimal;

use super::{OrderError, OrderEvent, OrderLine, PlaceOrder};
use crate::limits::{
    check_text, TextProblem, MAX_CUSTOMER_ID_CHARS, MAX_LINES, MAX_LINE_QUANTITY, MAX_PRICE_SCALE,
    MAX_UNIT_PRICE,
};

pub(super) fn place_order(place: &PlaceOrder) -> Result<Vec<OrderEvent>, OrderError> {
    check_text(&place.customer_id, MAX_CUSTOMER_ID_CHARS).map_err(OrderError::InvalidCustomerId)?;
    if place.customer_id.chars().all(|c| c == ' ') {
        return Err(OrderError::InvalidCustomerId(TextProblem::Blank));
    }
    if place.lines.is_empty() {
        return Err(OrderError::NoLines);
    }
    if place.lines.len() > MAX_LINES {
        return Err(OrderError::TooManyLines {
            count: place.lines.len(),
            max: MAX_LINES,
        });
    }
    for (index, line) in place.lines.iter().enumerate() {
        check_line(index, line)?;
    }
    let total = exact_total(&place.lines).ok_or(OrderError::InexactTotal)?;
    Ok(vec![OrderEvent::Placed {
        order_id: place.order_id,
        customer_id: place.customer_id.clone(),
        currency: place.currency,
        lines: place.lines.clone(),
        total,
        payment_method: place.payment_method,
    }])
}

/// One line within the limits; `line` is its index in the order.
fn check_line(line: usize, order_line: &OrderLine) -> Result<(), OrderError> {
    let OrderLine {
        sku,
        quantity,
        unit_price,
    } = order_line;
    let sku = sku.clone();
    if *quantity == 0 {
        return Err(OrderError::ZeroQuantity { line, sku });
    }
    if *quantity > MAX_LINE_QUANTITY {
        return Err(OrderError::QuantityTooLarge {
            line,
            sku,
            quantity: *quantity,
            max: MAX_LINE_QUANTITY,
        });
    }
    if *unit_price < Decimal::ZERO {
        return Err(OrderError::NegativeUnitPrice {
            line,
            sku,
            unit_price: *unit_price,
        });
    }
    // The written scale counts, trailing zeros included: stripping them
    // would be exact, but the stored price would differ from the one sent.
    if unit_price.scale() > MAX_PRICE_SCALE {
        return Err(OrderError::TooManyDecimals {
            line,
            sku,
            unit_price: *unit_price,
            scale: unit_price.scale(),
            max: MAX_PRICE_SCALE,
        });
    }
    if *unit_price > MAX_UNIT_PRICE {
        return Err(OrderError::UnitPriceTooLarge {
            line,
            sku,
            unit_price: *unit_price,
            max: MAX_UNIT_PRICE,
        });
    }
    Ok(())
}

/// `value` counted in units of `10^-MAX_PRICE_SCALE`, if it has at most
/// that many decimal places.
fn in_smallest_units(value: Decimal) -> Option<i128> {
    let shift = MAX_PRICE_SCALE.checked_sub(value.scale())?;
    value.mantissa().checked_mul(10i128.checked_pow(shift)?)
}

/// The sum of `quantity * unit_price` over `lines`, or `None` unless it is
/// exact.
///
/// `rust_decimal`'s `checked_mul` and `checked_add` fail only when the
/// integer part overflows; when the mantissa overflows they round. So the
/// sum is computed twice: as a `Decimal` (whose scale, the largest scale of
/// the prices, is what the API shows, `"19.98"`) and in `i128` smallest
/// units, which cannot round. They must agree. Within [`crate::limits`]
/// they always do; the comparison is the proof that holds even if the
/// limits are ever changed carelessly.
pub(crate) fn exact_total(lines: &[OrderLine]) -> Option<Decimal> {
    let mut total = Decimal::ZERO;
    let mut smallest_units: i128 = 0;
    for line in lines {
        let quantity = Decimal::from(line.quantity);
        total = total.checked_add(line.unit_price.checked_mul(quantity)?)?;
        let line_units =
            in_smallest_units(line.unit_price)?.checked_mul(i128::from(line.quantity))?;
        smallest_units = smallest_units.checked_add(line_units)?;
    }
    let wide = Decimal::try_from_i128_with_scale(smallest_units, MAX_PRICE_SCALE).ok()?;
    (total == wide).then_some(total)
}
