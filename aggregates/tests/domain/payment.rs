//! Payment scenarios and the gateway simulator.

use aggregates::payment::{
    simulated_gateway_outcome, GatewayOutcome, Payment, PaymentCommand, PaymentError, PaymentEvent,
    PaymentStatus,
};
use aggregates::testing::given;
use aggregates::values::{Currency, PaymentMethod};
use aggregates::{fold_from, Aggregate};

use crate::helpers::*;

fn request(attempt: u32) -> PaymentCommand {
    PaymentCommand::Request {
        order_id: order_id(1),
        amount: dec("20.48"),
        currency: Currency::Eur,
        method: PaymentMethod::CardFlaky,
        attempt,
    }
}

fn requested(attempt: u32) -> PaymentEvent {
    PaymentEvent::Requested {
        order_id: order_id(1),
        amount: dec("20.48"),
        currency: Currency::Eur,
        method: PaymentMethod::CardFlaky,
        attempt,
    }
}

fn failed(attempt: u32) -> PaymentEvent {
    PaymentEvent::Failed {
        reason: "x".into(),
        retryable: true,
        attempt,
    }
}

fn captured() -> PaymentEvent {
    PaymentEvent::Captured {
        reference: "r".into(),
        amount: dec("20.48"),
        attempt: 1,
    }
}

#[test]
fn the_first_request_starts_attempt_one() {
    let state = given::<Payment>([]).when(request(1)).then([requested(1)]);
    assert_eq!(state.status, Some(PaymentStatus::Requested));
    given::<Payment>([])
        .when(request(2))
        .then_err(PaymentError::UnexpectedAttempt {
            expected: 1,
            actual: 2,
        });
}

#[test]
fn a_negative_amount_is_invalid() {
    given::<Payment>([])
        .when(PaymentCommand::Request {
            order_id: order_id(1),
            amount: dec("-1"),
            currency: Currency::Eur,
            method: PaymentMethod::CardOk,
            attempt: 1,
        })
        .then_err(PaymentError::NegativeAmount { amount: dec("-1") });
}

#[test]
fn requesting_an_attempt_already_made_is_a_no_op() {
    given::<Payment>([requested(1)])
        .when(request(1))
        .then_nothing();
    given::<Payment>([requested(1), failed(1), requested(2)])
        .when(request(1))
        .then_nothing();
}

#[test]
fn a_new_attempt_follows_a_failure() {
    given::<Payment>([requested(1), failed(1)])
        .when(request(2))
        .then([requested(2)]);
    given::<Payment>([requested(1), failed(1)])
        .when(request(3))
        .then_err(PaymentError::UnexpectedAttempt {
            expected: 2,
            actual: 3,
        });
}

#[test]
fn a_new_attempt_waits_for_the_current_one() {
    given::<Payment>([requested(1)])
        .when(request(2))
        .then_err(PaymentError::AttemptInProgress { attempt: 1 });
}

#[test]
fn a_captured_payment_takes_no_new_attempt() {
    given::<Payment>([requested(1), captured()])
        .when(request(2))
        .then_err(PaymentError::AlreadyCaptured {
            status: PaymentStatus::Captured,
        });
}

#[test]
fn a_request_for_another_order_is_refused() {
    given::<Payment>([requested(1)])
        .when(PaymentCommand::Request {
            order_id: order_id(2),
            amount: dec("1"),
            currency: Currency::Eur,
            method: PaymentMethod::CardOk,
            attempt: 1,
        })
        .then_err(PaymentError::OrderMismatch {
            expected: order_id(1),
            actual: order_id(2),
        });
}

#[test]
fn capture_happens_only_once() {
    let state = given::<Payment>([requested(1)])
        .when(PaymentCommand::RecordCapture {
            reference: "r".into(),
        })
        .then([captured()]);
    assert_eq!(state.reference.as_deref(), Some("r"));
    given::<Payment>([requested(1), captured()])
        .when(PaymentCommand::RecordCapture {
            reference: "other".into(),
        })
        .then_nothing();
}

#[test]
fn recording_a_result_without_a_request_is_refused() {
    given::<Payment>([])
        .when(PaymentCommand::RecordCapture {
            reference: "r".into(),
        })
        .then_err(PaymentError::NotRequested);
    given::<Payment>([])
        .when(PaymentCommand::Refund)
        .then_err(PaymentError::NotRequested);
}

#[test]
fn a_failed_attempt_cannot_be_captured() {
    given::<Payment>([requested(1), failed(1)])
        .when(PaymentCommand::RecordCapture {
            reference: "r".into(),
        })
        .then_err(PaymentError::NotAwaitingResult {
            status: PaymentStatus::Failed,
        });
}

#[test]
fn a_failure_is_recorded_once_with_its_retryability() {
    let state = given::<Payment>([requested(1)])
        .when(PaymentCommand::RecordFailure {
            reason: "card declined".into(),
            retryable: false,
        })
        .then([PaymentEvent::Failed {
            reason: "card declined".into(),
            retryable: false,
            attempt: 1,
        }]);
    assert!(!state.last_failure.unwrap().retryable);
    given::<Payment>([requested(1), failed(1)])
        .when(PaymentCommand::RecordFailure {
            reason: "x".into(),
            retryable: true,
        })
        .then_nothing();
}

#[test]
fn a_captured_payment_cannot_fail() {
    given::<Payment>([requested(1), captured()])
        .when(PaymentCommand::RecordFailure {
            reason: "x".into(),
            retryable: true,
        })
        .then_err(PaymentError::AlreadyCaptured {
            status: PaymentStatus::Captured,
        });
}

#[test]
fn a_captured_payment_is_refunded_once() {
    given::<Payment>([requested(1), captured()])
        .when(PaymentCommand::Refund)
        .then([PaymentEvent::Refunded {
            amount: dec("20.48"),
        }]);
    given::<Payment>([
        requested(1),
        captured(),
        PaymentEvent::Refunded {
            amount: dec("20.48"),
        },
    ])
    .when(PaymentCommand::Refund)
    .then_nothing();
    given::<Payment>([requested(1)])
        .when(PaymentCommand::Refund)
        .then_err(PaymentError::NotCaptured {
            status: PaymentStatus::Requested,
        });
}

#[test]
fn the_simulator_follows_the_payment_methods() {
    use GatewayOutcome::*;
    use PaymentMethod::*;
    let table = [
        (CardOk, 1, Captured),
        (CardOk, 2, Captured),
        (CardDeclined, 1, PermanentFailure),
        (CardDeclined, 3, PermanentFailure),
        (CardFlaky, 1, TransientFailure),
        (CardFlaky, 2, TransientFailure),
        (CardFlaky, 3, Captured),
    ];
    for (method, attempt, expected) in table {
        assert_eq!(
            simulated_gateway_outcome(method, attempt),
            expected,
            "{method} attempt {attempt}"
        );
    }
}

#[test]
fn a_flaky_card_is_captured_on_the_third_attempt() {
    let mut payment = Payment::default();
    for attempt in 1..=3 {
        let events = payment.decide(&request(attempt)).unwrap();
        payment = fold_from(payment, &events);
        let outcome = simulated_gateway_outcome(PaymentMethod::CardFlaky, attempt);
        let events = payment
            .decide(&outcome.to_command(order_id(1), attempt))
            .unwrap();
        payment = fold_from(payment, &events);
    }
    assert_eq!(payment.status, Some(PaymentStatus::Captured));
    assert_eq!(payment.attempts, 3);
    assert_eq!(payment.reference, Some(format!("sim-{}-3", order_id(1))));
}

fn declined(attempt: u32) -> PaymentEvent {
    PaymentEvent::Failed {
        reason: "declined".into(),
        retryable: false,
        attempt,
    }
}

#[test]
fn round_one_starts_with_attempt_one_and_a_transient_failure_leads_to_the_next_attempt() {
    assert_eq!(Payment::default().attempt_for_round(1), Some(1));
    let state = given::<Payment>([requested(1), failed(1)]);
    assert_eq!(state.state().attempt_for_round(1), Some(2));
}

#[test]
fn a_retry_after_a_transient_then_a_permanent_failure_makes_the_third_attempt() {
    // Two gateway attempts, one round failed for good: the order asks for
    // round 2, which the payment has not honoured yet.
    let state = given::<Payment>([requested(1), failed(1), requested(2), declined(2)]);
    assert_eq!(state.state().rounds_failed, 1);
    assert_eq!(state.state().attempt_for_round(2), Some(3));
    given::<Payment>([requested(1), failed(1), requested(2), declined(2)])
        .when(request(3))
        .then([requested(3)]);
}

#[test]
fn a_redelivered_request_for_a_round_that_failed_for_good_makes_no_attempt() {
    let state = given::<Payment>([requested(1), failed(1), requested(2), declined(2)]);
    assert_eq!(state.state().attempt_for_round(1), None);
    let state = given::<Payment>([
        requested(1),
        declined(1),
        requested(2),
        failed(2),
        requested(3),
        declined(3),
    ]);
    assert_eq!(state.state().rounds_failed, 2);
    assert_eq!(state.state().attempt_for_round(1), None);
    assert_eq!(state.state().attempt_for_round(2), None);
    assert_eq!(state.state().attempt_for_round(3), Some(4));
}

#[test]
fn a_captured_payment_makes_no_attempt_for_any_round() {
    let state = given::<Payment>([requested(1), failed(1), requested(2), captured()]);
    for round in 1..=3 {
        assert_eq!(
            state.state().attempt_for_round(round),
            None,
            "round {round}"
        );
    }
}

#[test]
fn an_attempt_requested_but_never_answered_is_asked_again_under_its_number() {
    let state = given::<Payment>([requested(1), declined(1), requested(2)]);
    assert_eq!(state.state().attempt_for_round(2), Some(2));
    given::<Payment>([requested(1), declined(1), requested(2)])
        .when(request(2))
        .then_nothing();
}
