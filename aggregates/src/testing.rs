//! Given / when / then helper for aggregate tests (no database):
//! `given(events).when(command).then(events)` or `.then_err(error)`.

use std::fmt::Debug;

use crate::{fold, Aggregate};

/// Starts a scenario from past events.
pub fn given<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> Given<A> {
    let events: Vec<A::Event> = events.into_iter().collect();
    Given {
        state: fold(&events),
    }
}

pub struct Given<A: Aggregate> {
    state: A,
}

impl<A: Aggregate> Given<A> {
    /// The state the past events fold into.
    pub fn state(&self) -> &A {
        &self.state
    }

    pub fn when(self, command: A::Command) -> When<A> {
        let result = self.state.decide(&command);
        When {
            state: self.state,
            result,
        }
    }
}

pub struct When<A: Aggregate> {
    state: A,
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> When<A>
where
    A::Error: PartialEq + Debug,
{
    /// Asserts the command produced exactly `expected`, and returns the state
    /// after applying them for further checks.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = A::Event>) -> A {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected, "unexpected events");
                crate::fold_from(self.state, &events)
            }
            Err(error) => panic!("expected events {expected:?}, got error {error:?}"),
        }
    }

    /// Asserts the command succeeded, whatever its events, and returns the
    /// state after them.
    #[track_caller]
    pub fn then_ok(self) -> A {
        match self.result {
            Ok(events) => crate::fold_from(self.state, &events),
            Err(error) => panic!("expected success, got error {error:?}"),
        }
    }

    /// Asserts the command changed nothing (`Ok(vec![])`).
    #[track_caller]
    pub fn then_nothing(self) -> A {
        self.then([])
    }

    /// Asserts the command was refused with `expected`.
    #[track_caller]
    pub fn then_err(self, expected: A::Error) {
        match self.result {
            Ok(events) => panic!("expected error {expected:?}, got events {events:?}"),
            Err(error) => assert_eq!(error, expected, "unexpected error"),
        }
    }
}
