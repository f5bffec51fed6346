//! Builders shared by the scenarios: ids, SKUs, lines and typical events.

use aggregates::order::{OrderCommand, OrderEvent, OrderLine, PlaceOrder};
use aggregates::values::{Currency, PaymentMethod, Sku, Warehouse};
use rust_decimal::Decimal;
use uuid::Uuid;

pub fn sku(name: &str) -> Sku {
    Sku::parse(name).unwrap()
}

pub fn wh(name: &str) -> Warehouse {
    Warehouse::parse(name).unwrap()
}

pub fn order_id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

pub fn dec(value: &str) -> Decimal {
    value.parse().unwrap()
}

pub fn line(name: &str, quantity: u32, unit_price: &str) -> OrderLine {
    OrderLine {
        sku: sku(name),
        quantity,
        unit_price: dec(unit_price),
    }
}

pub fn place(lines: Vec<OrderLine>) -> PlaceOrder {
    PlaceOrder {
        order_id: order_id(1),
        customer_id: "c-42".to_owned(),
        currency: Currency::Eur,
        lines,
        payment_method: PaymentMethod::CardOk,
    }
}

pub fn place_command() -> OrderCommand {
    OrderCommand::Place(place(vec![
        line("SKU-1", 2, "9.99"),
        line("SKU-2", 1, "0.50"),
    ]))
}

/// The event `place_command()` produces: total 20.48 EUR.
pub fn placed() -> OrderEvent {
    OrderEvent::Placed {
        order_id: order_id(1),
        customer_id: "c-42".to_owned(),
        currency: Currency::Eur,
        lines: vec![line("SKU-1", 2, "9.99"), line("SKU-2", 1, "0.50")],
        total: dec("20.48"),
        payment_method: PaymentMethod::CardOk,
    }
}
