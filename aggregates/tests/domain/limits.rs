//! The limits of `aggregates::limits` at their boundaries: the largest
//! values are accepted and add up exactly, one step beyond is refused with
//! a typed error, and no accepted sequence of commands leaves a sum that
//! overflows or rounds (proptests near `i64::MAX`, 28-digit decimals and
//! the maximum scale).

use aggregates::inventory::{Inventory, InventoryCommand, InventoryError, InventoryEvent};
use aggregates::limits::{
    MAX_LINES, MAX_LINE_QUANTITY, MAX_ON_HAND_PER_SKU, MAX_ON_HAND_PER_WAREHOUSE, MAX_PRICE_SCALE,
    MAX_STOCK_MOVEMENT, MAX_UNIT_PRICE,
};
use aggregates::order::{Order, OrderCommand, OrderError, OrderEvent, OrderLine};
use aggregates::testing::given;
use aggregates::{fold_from, Aggregate};
use proptest::prelude::*;
use rust_decimal::Decimal;

use crate::helpers::*;

// ------------------------------------------------------------------ stock

fn received(warehouse: &str, quantity: u64) -> InventoryEvent {
    InventoryEvent::Received {
        sku: sku("SKU-1"),
        warehouse: wh(warehouse),
        quantity,
    }
}

fn receive(warehouse: &str, quantity: u64) -> InventoryCommand {
    InventoryCommand::Receive {
        sku: sku("SKU-1"),
        warehouse: wh(warehouse),
        quantity,
    }
}

fn adjust(warehouse: &str, delta: i64) -> InventoryCommand {
    InventoryCommand::Adjust {
        sku: sku("SKU-1"),
        warehouse: wh(warehouse),
        delta,
        reason: "count".into(),
    }
}

/// `warehouse` filled to its limit by the largest receipts.
fn full(warehouse: &str) -> Vec<InventoryEvent> {
    let receipts = MAX_ON_HAND_PER_WAREHOUSE / MAX_STOCK_MOVEMENT;
    (0..receipts)
        .map(|_| received(warehouse, MAX_STOCK_MOVEMENT))
        .collect()
}

#[test]
fn the_stock_limits_keep_every_sum_far_inside_a_bigint() {
    // Reserved never exceeds on hand, so every level the read models store
    // (per warehouse, and summed over a SKU's warehouses) is at most the
    // per-SKU limit: with a margin of more than 10^4 below i64::MAX.
    let bigint = u64::try_from(i64::MAX).unwrap();
    // (The order of the limits among themselves is asserted at compile
    // time in `aggregates::limits`.)
    assert!(MAX_ON_HAND_PER_SKU.checked_mul(10_000).unwrap() < bigint);
    assert_eq!(MAX_ON_HAND_PER_WAREHOUSE % MAX_STOCK_MOVEMENT, 0);
}

#[test]
fn two_receipts_of_five_quintillion_are_refused_not_clamped() {
    let five_quintillion = 5_000_000_000_000_000_000;
    for warehouse in ["a", "b"] {
        given::<Inventory>([])
            .when(receive(warehouse, five_quintillion))
            .then_err(InventoryError::MovementTooLarge {
                quantity: five_quintillion,
                max: MAX_STOCK_MOVEMENT,
            });
    }
}

#[test]
fn the_largest_receipt_is_accepted_and_one_more_unit_is_refused() {
    given::<Inventory>([])
        .when(receive("main", MAX_STOCK_MOVEMENT))
        .then([received("main", MAX_STOCK_MOVEMENT)]);
    given::<Inventory>([])
        .when(receive("main", MAX_STOCK_MOVEMENT + 1))
        .then_err(InventoryError::MovementTooLarge {
            quantity: MAX_STOCK_MOVEMENT + 1,
            max: MAX_STOCK_MOVEMENT,
        });
}

#[test]
fn an_adjustment_moves_at_most_the_largest_movement_either_way() {
    let stocked = || given::<Inventory>(full("main"));
    stocked()
        .when(adjust("main", -i64::try_from(MAX_STOCK_MOVEMENT).unwrap()))
        .then_ok();
    for delta in [
        i64::try_from(MAX_STOCK_MOVEMENT + 1).unwrap(),
        -i64::try_from(MAX_STOCK_MOVEMENT + 1).unwrap(),
        i64::MAX,
        i64::MIN,
    ] {
        stocked()
            .when(adjust("main", delta))
            .then_err(InventoryError::MovementTooLarge {
                quantity: delta.unsigned_abs(),
                max: MAX_STOCK_MOVEMENT,
            });
    }
}

#[test]
fn a_full_warehouse_refuses_receipts_and_upward_adjustments_but_not_downward() {
    let state = given::<Inventory>(full("main")).state().clone();
    assert_eq!(state.level().on_hand, MAX_ON_HAND_PER_WAREHOUSE);
    let refusal = InventoryError::WarehouseLimitExceeded {
        warehouse: wh("main"),
        on_hand: MAX_ON_HAND_PER_WAREHOUSE,
        increase: 1,
        max: MAX_ON_HAND_PER_WAREHOUSE,
    };
    given::<Inventory>(full("main"))
        .when(receive("main", 1))
        .then_err(refusal.clone());
    given::<Inventory>(full("main"))
        .when(adjust("main", 1))
        .then_err(refusal);
    given::<Inventory>(full("main"))
        .when(adjust("main", -1))
        .then_ok();
    // Another warehouse still takes stock.
    given::<Inventory>(full("main"))
        .when(receive("other", 1))
        .then_ok();
}

#[test]
fn a_sku_at_its_limit_refuses_stock_in_any_warehouse() {
    let warehouses = MAX_ON_HAND_PER_SKU / MAX_ON_HAND_PER_WAREHOUSE;
    let history: Vec<InventoryEvent> = (0..warehouses)
        .flat_map(|n| full(&format!("w{n}")))
        .collect();
    let state = given::<Inventory>(history.clone()).state().clone();
    assert_eq!(state.level().on_hand, MAX_ON_HAND_PER_SKU);
    let refusal = InventoryError::SkuLimitExceeded {
        sku: sku("SKU-1"),
        on_hand: u128::from(MAX_ON_HAND_PER_SKU),
        increase: 1,
        max: MAX_ON_HAND_PER_SKU,
    };
    given::<Inventory>(history.clone())
        .when(receive("empty", 1))
        .then_err(refusal.clone());
    given::<Inventory>(history.clone())
        .when(adjust("empty", 1))
        .then_err(refusal);
    given::<Inventory>(history).when(adjust("w0", -1)).then_ok();
}

#[derive(Clone, Debug)]
enum Move {
    Receive(usize, u64),
    Adjust(usize, i64),
}

const WAREHOUSES: usize = 12;

fn stock_move() -> impl Strategy<Value = Move> {
    let warehouse = 0..WAREHOUSES;
    let max = i64::try_from(MAX_STOCK_MOVEMENT).unwrap();
    let quantity = prop_oneof![
        8 => (MAX_STOCK_MOVEMENT - 3)..=MAX_STOCK_MOVEMENT,
        2 => 1..=MAX_STOCK_MOVEMENT,
        1 => MAX_STOCK_MOVEMENT..=MAX_STOCK_MOVEMENT + 3,
        1 => (u64::MAX - 3)..=u64::MAX,
        1 => 0..=3u64,
    ];
    let delta = prop_oneof![
        3 => (max - 3)..=max,
        3 => -max..=(3 - max),
        2 => -max..=max,
        1 => (i64::MAX - 3)..=i64::MAX,
        1 => i64::MIN..=(i64::MIN + 3),
        1 => -3..=3i64,
    ];
    prop_oneof![
        4 => (warehouse.clone(), quantity).prop_map(|(w, q)| Move::Receive(w, q)),
        1 => (warehouse, delta).prop_map(|(w, d)| Move::Adjust(w, d)),
    ]
}

fn on_hand_in(state: &Inventory, warehouse: &str) -> u128 {
    state
        .warehouses
        .get(&wh(warehouse))
        .map_or(0, |stock| u128::from(stock.on_hand))
}

fn on_hand_total(state: &Inventory) -> u128 {
    state
        .warehouses
        .values()
        .map(|stock| u128::from(stock.on_hand))
        .sum()
}

proptest! {
    /// Receipts and adjustments near the limits and near `i64::MAX`: every
    /// accepted one keeps each warehouse and the SKU within its limit (so
    /// every read-model sum fits a BIGINT), and one is refused only when it
    /// would pass a limit.
    #[test]
    fn any_accepted_receipt_sequence_keeps_on_hand_within_the_limits(
        moves in prop::collection::vec(stock_move(), 1..300)
    ) {
        let mut state = Inventory::default();
        for stock_move in moves {
            let (warehouse, command, increase) = match stock_move {
                Move::Receive(w, quantity) => {
                    let name = format!("w{w}");
                    let command = receive(&name, quantity);
                    (name, command, i128::from(quantity))
                }
                Move::Adjust(w, delta) => {
                    let name = format!("w{w}");
                    let command = adjust(&name, delta);
                    (name, command, i128::from(delta))
                }
            };
            let in_warehouse = on_hand_in(&state, &warehouse) as i128;
            let total = on_hand_total(&state) as i128;
            let movement = increase.unsigned_abs();
            let within = increase != 0
                && movement <= u128::from(MAX_STOCK_MOVEMENT)
                && in_warehouse + increase >= 0
                && in_warehouse + increase <= i128::from(MAX_ON_HAND_PER_WAREHOUSE)
                && total + increase <= i128::from(MAX_ON_HAND_PER_SKU);
            match state.decide(&command) {
                Ok(events) => {
                    prop_assert!(within, "{command:?} accepted beyond the limits");
                    state = fold_from(state, &events);
                }
                Err(error) => {
                    prop_assert!(!within, "{command:?} refused within the limits: {error}");
                    prop_assert!(matches!(
                        error,
                        InventoryError::ZeroQuantity
                            | InventoryError::ZeroAdjustment
                            | InventoryError::MovementTooLarge { .. }
                            | InventoryError::NegativeOnHand { .. }
                            | InventoryError::WarehouseLimitExceeded { .. }
                            | InventoryError::SkuLimitExceeded { .. }
                    ), "{error:?}");
                }
            }
            for stock in state.warehouses.values() {
                prop_assert!(stock.on_hand <= MAX_ON_HAND_PER_WAREHOUSE);
            }
            let total = on_hand_total(&state);
            prop_assert!(total <= u128::from(MAX_ON_HAND_PER_SKU));
            // The aggregate's own (saturating) total never saturated.
            prop_assert_eq!(u128::from(state.level().on_hand), total);
            prop_assert!(i64::try_from(total).is_ok());
        }
    }
}

// ------------------------------------------------------------------ money

fn priced(name: &str, quantity: u32, unit_price: Decimal) -> OrderLine {
    OrderLine {
        sku: sku(name),
        quantity,
        unit_price,
    }
}

fn place_lines(lines: Vec<OrderLine>) -> Result<Vec<OrderEvent>, OrderError> {
    Order::default().decide(&OrderCommand::Place(place(lines)))
}

fn placed_total(lines: Vec<OrderLine>) -> Decimal {
    match place_lines(lines) {
        Ok(events) => match events.as_slice() {
            [OrderEvent::Placed { total, .. }] => *total,
            other => panic!("expected OrderPlaced, got {other:?}"),
        },
        Err(error) => panic!("refused: {error}"),
    }
}

/// The exact total as a string, computed independently of `rust_decimal`:
/// `i128` mantissas brought to the largest scale of the prices.
fn exact_total_text(lines: &[OrderLine]) -> String {
    let scale = lines
        .iter()
        .map(|l| l.unit_price.scale())
        .max()
        .unwrap_or(0);
    let sum: i128 = lines
        .iter()
        .map(|l| {
            l.unit_price.mantissa()
                * 10i128.pow(scale - l.unit_price.scale())
                * i128::from(l.quantity)
        })
        .sum();
    let digits = format!("{:0>width$}", sum, width = scale as usize + 1);
    let (whole, fraction) = digits.split_at(digits.len() - scale as usize);
    if fraction.is_empty() {
        whole.to_owned()
    } else {
        format!("{whole}.{fraction}")
    }
}

#[test]
fn the_largest_unit_price_is_twelve_nines_point_four_nines() {
    assert_eq!(MAX_UNIT_PRICE.to_string(), "999999999999.9999");
    assert_eq!(MAX_UNIT_PRICE.scale(), MAX_PRICE_SCALE);
}

#[test]
fn the_largest_order_is_accepted_with_its_exact_total() {
    let lines: Vec<OrderLine> = (0..MAX_LINES)
        .map(|n| priced(&format!("SKU-{n}"), MAX_LINE_QUANTITY, MAX_UNIT_PRICE))
        .collect();
    let total = placed_total(lines.clone());
    assert_eq!(total.to_string(), "99999999999999990000.0000");
    assert_eq!(total.to_string(), exact_total_text(&lines));
}

#[test]
fn a_price_that_would_vanish_in_the_total_is_refused_not_rounded() {
    // The order: 1000000000 plus 10^-28 used to total 1000000000.0…0.
    let lines = vec![
        priced("SKU-1", 1, dec("1000000000")),
        priced("SKU-2", 1, dec("0.0000000000000000000000000001")),
    ];
    assert_eq!(
        place_lines(lines),
        Err(OrderError::TooManyDecimals {
            line: 1,
            sku: sku("SKU-2"),
            unit_price: dec("0.0000000000000000000000000001"),
            scale: 28,
            max: MAX_PRICE_SCALE,
        })
    );
}

#[test]
fn four_decimal_places_are_accepted_five_are_refused_even_as_trailing_zeros() {
    let total = placed_total(vec![priced("SKU-1", 3, dec("0.0001"))]);
    assert_eq!(total.to_string(), "0.0003");
    for price in ["0.00001", "1.00000"] {
        let refused = place_lines(vec![priced("SKU-1", 1, dec(price))]);
        assert!(
            matches!(refused, Err(OrderError::TooManyDecimals { scale: 5, .. })),
            "{price}: {refused:?}"
        );
    }
}

#[test]
fn one_step_beyond_the_largest_price_or_quantity_is_refused() {
    let beyond_price = MAX_UNIT_PRICE + dec("0.0001");
    assert_eq!(
        place_lines(vec![priced("SKU-1", 1, beyond_price)]),
        Err(OrderError::UnitPriceTooLarge {
            line: 0,
            sku: sku("SKU-1"),
            unit_price: beyond_price,
            max: MAX_UNIT_PRICE,
        })
    );
    assert_eq!(
        place_lines(vec![
            priced("SKU-1", 1, dec("1")),
            priced("SKU-2", MAX_LINE_QUANTITY + 1, dec("1")),
        ]),
        Err(OrderError::QuantityTooLarge {
            line: 1,
            sku: sku("SKU-2"),
            quantity: MAX_LINE_QUANTITY + 1,
            max: MAX_LINE_QUANTITY,
        })
    );
    assert_eq!(
        place_lines(vec![priced("SKU-1", u32::MAX, dec("1"))]),
        Err(OrderError::QuantityTooLarge {
            line: 0,
            sku: sku("SKU-1"),
            quantity: u32::MAX,
            max: MAX_LINE_QUANTITY,
        })
    );
}

#[test]
fn a_line_total_is_exact_or_none() {
    assert_eq!(priced("SKU-1", 3, dec("9.99")).total(), Some(dec("29.97")));
    assert_eq!(
        priced("SKU-1", MAX_LINE_QUANTITY, MAX_UNIT_PRICE).total(),
        Some(dec("999999999999999900.0000"))
    );
    // Beyond the price scale there is no exact total within the limits.
    assert_eq!(priced("SKU-1", 1, dec("0.00001")).total(), None);
    assert_eq!(priced("SKU-1", 7, Decimal::MAX).total(), None);
}

/// A price within the limits: `scale` decimal places, up to 12 digits
/// before the point, biased towards the largest.
fn price_within_limits() -> impl Strategy<Value = Decimal> {
    (0..=MAX_PRICE_SCALE).prop_flat_map(|scale| {
        let bound = 10i64.pow(12 + scale);
        prop_oneof![
            2 => (bound - 1000)..bound,
            1 => 0..bound,
            1 => 0..1000i64,
        ]
        .prop_map(move |mantissa| Decimal::new(mantissa, scale))
    })
}

fn quantity_within_limits() -> impl Strategy<Value = u32> {
    prop_oneof![
        2 => (MAX_LINE_QUANTITY - 100)..=MAX_LINE_QUANTITY,
        1 => 1..=MAX_LINE_QUANTITY,
        1 => 1..=10u32,
    ]
}

/// Any `Decimal`, weighted towards 28-digit mantissas and every scale.
fn any_price() -> impl Strategy<Value = Decimal> {
    let mantissa = prop_oneof![
        // 28 significant digits.
        2 => 10i128.pow(27)..10i128.pow(28),
        // Up to the 96-bit maximum.
        1 => 0..=Decimal::MAX.mantissa(),
        1 => 0..10_000i128,
    ];
    (mantissa, 0..=28u32)
        .prop_map(|(mantissa, scale)| Decimal::try_from_i128_with_scale(mantissa, scale).unwrap())
}

proptest! {
    /// Any order within the limits is accepted, and its total is the exact
    /// sum, digit for digit, of an independent wide computation.
    #[test]
    fn any_accepted_order_total_is_the_exact_sum(
        lines in prop::collection::vec(
            (price_within_limits(), quantity_within_limits()), 1..=MAX_LINES
        )
    ) {
        let lines: Vec<OrderLine> = lines
            .into_iter()
            .enumerate()
            .map(|(n, (price, quantity))| priced(&format!("SKU-{n}"), quantity, price))
            .collect();
        let total = placed_total(lines.clone());
        prop_assert_eq!(total.to_string(), exact_total_text(&lines));
    }

    /// Any prices at all (28-digit mantissas, every scale up to 28): an
    /// order is refused with a price error, or accepted with a total that
    /// is exact. No price ever vanishes in the total.
    #[test]
    fn any_price_is_refused_or_summed_exactly(
        prices in prop::collection::vec((any_price(), 1..=MAX_LINE_QUANTITY), 1..4)
    ) {
        let lines: Vec<OrderLine> = prices
            .into_iter()
            .enumerate()
            .map(|(n, (price, quantity))| priced(&format!("SKU-{n}"), quantity, price))
            .collect();
        let within = lines
            .iter()
            .all(|l| l.unit_price.scale() <= MAX_PRICE_SCALE && l.unit_price <= MAX_UNIT_PRICE);
        match place_lines(lines.clone()) {
            Ok(events) => {
                prop_assert!(within, "accepted beyond the limits: {lines:?}");
                let [OrderEvent::Placed { total, .. }] = events.as_slice() else {
                    panic!("expected OrderPlaced, got {events:?}");
                };
                prop_assert_eq!(total.to_string(), exact_total_text(&lines));
            }
            Err(error) => {
                prop_assert!(!within, "refused within the limits: {error}");
                prop_assert!(matches!(
                    error,
                    OrderError::TooManyDecimals { .. } | OrderError::UnitPriceTooLarge { .. }
                ), "{error:?}");
            }
        }
    }
}
