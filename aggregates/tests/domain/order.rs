//! Order scenarios: every transition, every named error, every idempotent no-op.

use aggregates::limits::TextProblem;
use aggregates::order::{Order, OrderCommand, OrderError, OrderEvent, OrderStatus};
use aggregates::testing::given;
use aggregates::values::{Currency, InvalidIdentifier, Shortage, UnknownCurrency};
use aggregates::Aggregate;
use aggregates::ErrorKind;

use crate::helpers::*;

use OrderStatus::*;

fn reserved() -> Vec<OrderEvent> {
    vec![placed(), OrderEvent::Reserved {}]
}

fn shipped() -> Vec<OrderEvent> {
    let mut events = reserved();
    events.push(OrderEvent::Shipped {});
    events
}

fn payment_failed() -> Vec<OrderEvent> {
    let mut events = shipped();
    events.push(OrderEvent::PaymentFailed {
        reason: "declined".into(),
    });
    events
}

fn shortage() -> Shortage {
    Shortage {
        sku: sku("SKU-1"),
        requested: 2,
        available: 1,
    }
}

/// Past events reaching each status.
fn history(status: OrderStatus) -> Vec<OrderEvent> {
    let mut events = vec![placed()];
    match status {
        Pending => {}
        Reserved => events = reserved(),
        Rejected => events.push(OrderEvent::Rejected {
            shortages: vec![shortage()],
        }),
        Cancelled => events.push(OrderEvent::Cancelled { reason: "x".into() }),
        Shipped => events = shipped(),
        Paid => {
            events = shipped();
            events.push(OrderEvent::Paid {
                amount: dec("20.48"),
            });
        }
        PaymentFailed => events = payment_failed(),
    }
    events
}

#[test]
fn placing_an_order_computes_the_total_exactly() {
    let state = given::<Order>([]).when(place_command()).then([placed()]);
    assert_eq!(state.status(), Some(Pending));
    assert_eq!(state.placed.unwrap().total, dec("20.48"));
}

#[test]
fn placing_an_order_twice_is_refused() {
    given::<Order>([placed()])
        .when(place_command())
        .then_err(OrderError::AlreadyPlaced);
}

#[test]
fn an_order_without_lines_is_invalid() {
    given::<Order>([])
        .when(OrderCommand::Place(place(vec![])))
        .then_err(OrderError::NoLines);
}

#[test]
fn an_order_with_more_than_100_lines_is_invalid() {
    let lines = (0..101).map(|_| line("SKU-1", 1, "1")).collect();
    given::<Order>([])
        .when(OrderCommand::Place(place(lines)))
        .then_err(OrderError::TooManyLines {
            count: 101,
            max: 100,
        });
}

#[test]
fn an_order_with_exactly_100_lines_is_accepted() {
    let lines = (0..100).map(|_| line("SKU-1", 1, "0.01")).collect();
    let result = given::<Order>([]).when(OrderCommand::Place(place(lines)));
    let state = result.then_ok();
    assert_eq!(state.placed.unwrap().total, dec("1.00"));
}

#[test]
fn a_line_with_zero_quantity_is_invalid() {
    given::<Order>([])
        .when(OrderCommand::Place(place(vec![line("SKU-1", 0, "1")])))
        .then_err(OrderError::ZeroQuantity {
            line: 0,
            sku: sku("SKU-1"),
        });
}

#[test]
fn a_negative_unit_price_is_invalid_but_zero_is_fine() {
    given::<Order>([])
        .when(OrderCommand::Place(place(vec![line("SKU-1", 1, "-0.01")])))
        .then_err(OrderError::NegativeUnitPrice {
            line: 0,
            sku: sku("SKU-1"),
            unit_price: dec("-0.01"),
        });
    let state = given::<Order>([])
        .when(OrderCommand::Place(place(vec![line("SKU-1", 1, "0")])))
        .then_ok();
    assert_eq!(state.placed.unwrap().total, dec("0"));
}

#[test]
fn a_price_too_large_for_an_exact_total_is_invalid_not_a_panic() {
    let huge = rust_decimal::Decimal::MAX;
    given::<Order>([])
        .when(OrderCommand::Place(place(vec![line(
            "SKU-1",
            2,
            &huge.to_string(),
        )])))
        .then_err(OrderError::UnitPriceTooLarge {
            line: 0,
            sku: sku("SKU-1"),
            unit_price: huge,
            max: aggregates::limits::MAX_UNIT_PRICE,
        });
}

#[test]
fn a_blank_customer_id_is_invalid() {
    let mut command = place(vec![line("SKU-1", 1, "1")]);
    command.customer_id = "  ".into();
    given::<Order>([])
        .when(OrderCommand::Place(command))
        .then_err(OrderError::InvalidCustomerId(TextProblem::Blank));
}

#[test]
fn parse_errors_of_values_convert_into_order_errors_of_kind_invalid() {
    let sku_error: OrderError = "bad sku!"
        .parse::<aggregates::values::Sku>()
        .unwrap_err()
        .into();
    assert_eq!(
        sku_error,
        OrderError::InvalidSku(InvalidIdentifier {
            kind: "SKU",
            value: "bad sku!".into()
        })
    );
    let currency_error: OrderError = "XYZ".parse::<Currency>().unwrap_err().into();
    assert_eq!(
        currency_error,
        OrderError::UnknownCurrency(UnknownCurrency("XYZ".into()))
    );
    assert_eq!(sku_error.kind(), ErrorKind::Invalid);
    assert_eq!(currency_error.kind(), ErrorKind::Invalid);
    assert_eq!(OrderError::NotPlaced.kind(), ErrorKind::NotFound);
    assert_eq!(
        OrderError::CannotCancel { status: Shipped }.kind(),
        ErrorKind::Conflict
    );
}

#[test]
fn commands_on_an_order_never_placed_are_not_found() {
    for command in [
        OrderCommand::MarkReserved,
        OrderCommand::Ship,
        OrderCommand::RetryPayment,
        OrderCommand::Cancel { reason: "x".into() },
    ] {
        given::<Order>([])
            .when(command)
            .then_err(OrderError::NotPlaced);
    }
}

#[test]
fn a_pending_order_becomes_reserved() {
    let state = given::<Order>([placed()])
        .when(OrderCommand::MarkReserved)
        .then([OrderEvent::Reserved {}]);
    assert_eq!(state.status(), Some(Reserved));
}

#[test]
fn marking_reserved_again_or_later_is_a_no_op() {
    for status in [Reserved, Shipped, Paid, PaymentFailed, Cancelled] {
        given::<Order>(history(status))
            .when(OrderCommand::MarkReserved)
            .then_nothing();
    }
}

#[test]
fn a_rejected_order_cannot_be_marked_reserved() {
    given::<Order>(history(Rejected))
        .when(OrderCommand::MarkReserved)
        .then_err(OrderError::CannotMarkReserved { status: Rejected });
}

#[test]
fn a_pending_order_is_rejected_with_its_shortages() {
    let state = given::<Order>([placed()])
        .when(OrderCommand::Reject {
            shortages: vec![shortage()],
        })
        .then([OrderEvent::Rejected {
            shortages: vec![shortage()],
        }]);
    assert_eq!(state.status(), Some(Rejected));
    assert_eq!(state.placed.unwrap().shortages, vec![shortage()]);
}

#[test]
fn rejecting_a_rejected_or_cancelled_order_is_a_no_op() {
    for status in [Rejected, Cancelled] {
        given::<Order>(history(status))
            .when(OrderCommand::Reject { shortages: vec![] })
            .then_nothing();
    }
}

#[test]
fn a_reserved_or_later_order_cannot_be_rejected() {
    for status in [Reserved, Shipped, Paid, PaymentFailed] {
        given::<Order>(history(status))
            .when(OrderCommand::Reject { shortages: vec![] })
            .then_err(OrderError::CannotReject { status });
    }
}

#[test]
fn pending_and_reserved_orders_can_be_cancelled() {
    for status in [Pending, Reserved] {
        let state = given::<Order>(history(status))
            .when(OrderCommand::Cancel {
                reason: "changed my mind".into(),
            })
            .then([OrderEvent::Cancelled {
                reason: "changed my mind".into(),
            }]);
        assert_eq!(state.status(), Some(Cancelled));
    }
}

#[test]
fn cancelling_a_cancelled_order_is_a_no_op() {
    given::<Order>(history(Cancelled))
        .when(OrderCommand::Cancel {
            reason: "again".into(),
        })
        .then_nothing();
}

#[test]
fn a_shipped_or_rejected_order_cannot_be_cancelled() {
    for status in [Rejected, Shipped, Paid, PaymentFailed] {
        given::<Order>(history(status))
            .when(OrderCommand::Cancel { reason: "x".into() })
            .then_err(OrderError::CannotCancel { status });
    }
}

#[test]
fn a_reserved_order_ships() {
    let state = given::<Order>(reserved())
        .when(OrderCommand::Ship)
        .then([OrderEvent::Shipped {}]);
    assert_eq!(state.status(), Some(Shipped));
}

#[test]
fn shipping_a_shipped_order_again_is_a_no_op() {
    for status in [Shipped, Paid, PaymentFailed] {
        given::<Order>(history(status))
            .when(OrderCommand::Ship)
            .then_nothing();
    }
}

#[test]
fn only_a_reserved_order_can_ship() {
    for status in [Pending, Rejected, Cancelled] {
        given::<Order>(history(status))
            .when(OrderCommand::Ship)
            .then_err(OrderError::CannotShip { status });
    }
}

#[test]
fn a_shipped_order_is_paid_with_its_total() {
    let state = given::<Order>(shipped())
        .when(OrderCommand::MarkPaid {
            amount: dec("20.48"),
        })
        .then([OrderEvent::Paid {
            amount: dec("20.48"),
        }]);
    assert_eq!(state.status(), Some(Paid));
}

#[test]
fn paying_another_amount_than_the_total_is_refused() {
    given::<Order>(shipped())
        .when(OrderCommand::MarkPaid { amount: dec("1") })
        .then_err(OrderError::AmountMismatch {
            expected: dec("20.48"),
            actual: dec("1"),
        });
}

#[test]
fn marking_a_paid_order_paid_again_is_a_no_op() {
    given::<Order>(history(Paid))
        .when(OrderCommand::MarkPaid {
            amount: dec("20.48"),
        })
        .then_nothing();
}

#[test]
fn an_order_that_has_not_shipped_cannot_be_paid() {
    for status in [Pending, Reserved, Rejected, Cancelled, PaymentFailed] {
        given::<Order>(history(status))
            .when(OrderCommand::MarkPaid {
                amount: dec("20.48"),
            })
            .then_err(OrderError::CannotMarkPaid { status });
    }
}

#[test]
fn a_shipped_order_records_a_payment_failure() {
    let state = given::<Order>(shipped())
        .when(OrderCommand::MarkPaymentFailed {
            reason: "declined".into(),
        })
        .then([OrderEvent::PaymentFailed {
            reason: "declined".into(),
        }]);
    assert_eq!(state.status(), Some(PaymentFailed));
}

#[test]
fn a_repeated_or_stale_payment_failure_is_a_no_op() {
    for status in [PaymentFailed, Paid] {
        given::<Order>(history(status))
            .when(OrderCommand::MarkPaymentFailed { reason: "x".into() })
            .then_nothing();
    }
}

#[test]
fn an_order_that_has_not_shipped_cannot_fail_payment() {
    for status in [Pending, Reserved, Rejected, Cancelled] {
        given::<Order>(history(status))
            .when(OrderCommand::MarkPaymentFailed { reason: "x".into() })
            .then_err(OrderError::CannotFailPayment { status });
    }
}

#[test]
fn retrying_a_failed_payment_returns_to_shipped_asking_for_the_next_round() {
    let state = given::<Order>(payment_failed())
        .when(OrderCommand::RetryPayment)
        .then([OrderEvent::PaymentRetryRequested { round: 2 }]);
    assert_eq!(state.status(), Some(Shipped));

    let mut events = payment_failed();
    events.push(OrderEvent::PaymentRetryRequested { round: 2 });
    events.push(OrderEvent::PaymentFailed { reason: "x".into() });
    given::<Order>(events)
        .when(OrderCommand::RetryPayment)
        .then([OrderEvent::PaymentRetryRequested { round: 3 }]);
}

#[test]
fn payment_can_only_be_retried_after_it_failed() {
    for status in [Pending, Reserved, Rejected, Cancelled, Shipped, Paid] {
        given::<Order>(history(status))
            .when(OrderCommand::RetryPayment)
            .then_err(OrderError::CannotRetryPayment { status });
    }
}

#[test]
fn status_names_match_the_api() {
    let names: Vec<&str> = [
        Pending,
        Reserved,
        Rejected,
        Cancelled,
        Shipped,
        Paid,
        PaymentFailed,
    ]
    .iter()
    .map(|s| s.as_str())
    .collect();
    assert_eq!(
        names,
        [
            "pending",
            "reserved",
            "rejected",
            "cancelled",
            "shipped",
            "paid",
            "payment_failed"
        ]
    );
    assert_eq!(
        serde_json::to_value(PaymentFailed).unwrap(),
        serde_json::json!("payment_failed")
    );
}

#[test]
fn a_customer_id_with_a_control_character_or_over_128_characters_is_invalid() {
    for (customer_id, problem) in [
        ("c\u{0}42".to_owned(), TextProblem::ControlCharacter),
        ("c-42\n".to_owned(), TextProblem::ControlCharacter),
        ("é".repeat(129), TextProblem::TooLong { max: 128 }),
    ] {
        let mut command = place(vec![line("SKU-1", 1, "1")]);
        command.customer_id = customer_id;
        given::<Order>([])
            .when(OrderCommand::Place(command))
            .then_err(OrderError::InvalidCustomerId(problem));
    }
    let mut longest = place(vec![line("SKU-1", 1, "1")]);
    longest.customer_id = "é".repeat(128);
    assert!(Order::default()
        .decide(&OrderCommand::Place(longest))
        .is_ok());
}
