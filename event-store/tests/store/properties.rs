//! Property test: random sequences of appends with random expectations, run
//! against the store and against an in-memory model; every outcome and
//! every read must agree.

use std::collections::BTreeMap;

use event_store::{EventStore, ExpectedVersion, LogCursor, StoreError, StreamAppend, StreamRead};
use proptest::prelude::*;
use uuid::Uuid;

use crate::helpers::{event, label, new_store};

#[derive(Debug, Clone)]
enum Expectation {
    Any,
    NoStream,
    StreamExists,
    /// Exact(model version + offset), so that right and wrong guesses both occur.
    ExactOffset(i64),
}

#[derive(Debug, Clone)]
struct Step {
    /// (stream index, expectation, number of events) for each stream written.
    streams: Vec<(usize, Expectation, usize)>,
}

fn expectation() -> impl Strategy<Value = Expectation> {
    prop_oneof![
        Just(Expectation::Any),
        Just(Expectation::NoStream),
        Just(Expectation::StreamExists),
        (-1_i64..=1).prop_map(Expectation::ExactOffset),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    proptest::collection::btree_map(0..4_usize, (expectation(), 0..3_usize), 1..=3).prop_map(
        |streams| Step {
            streams: streams
                .into_iter()
                .map(|(stream, (expected, count))| (stream, expected, count))
                .collect(),
        },
    )
}

/// The model: each stream's labels in order.
type Model = BTreeMap<String, Vec<String>>;

async fn run_case(store: &EventStore, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let case = Uuid::new_v4().simple().to_string();
    let stream_name = |index: usize| format!("p{case}x{index}-s");
    let mut model = Model::new();
    let mut label_counter = 0;
    for step in steps {
        let mut appends = Vec::new();
        let mut fits = true;
        for (index, expectation, count) in &step.streams {
            let name = stream_name(*index);
            let current = model.get(&name).map_or(0, |events| events.len() as i64);
            let expected = match expectation {
                Expectation::Any => ExpectedVersion::Any,
                Expectation::NoStream => ExpectedVersion::NoStream,
                Expectation::StreamExists => ExpectedVersion::StreamExists,
                Expectation::ExactOffset(offset) => {
                    ExpectedVersion::Exact((current + offset).max(0))
                }
            };
            fits &= expected.is_satisfied_by(current);
            let events = (0..*count)
                .map(|_| {
                    label_counter += 1;
                    event(&format!("e{label_counter}"))
                })
                .collect();
            appends.push(StreamAppend::new(name, expected, events));
        }
        let outcome = store.append_to_streams(&appends).await;
        match (&outcome, fits) {
            (Ok(_), true) => {
                for append in &appends {
                    let labels: Vec<String> = append
                        .events
                        .iter()
                        .map(|e| e.data["label"].as_str().unwrap_or_default().to_owned())
                        .collect();
                    model
                        .entry(append.stream_id.clone())
                        .or_default()
                        .extend(labels);
                }
            }
            (Err(StoreError::WrongExpectedVersion { .. }), false) => {}
            _ => prop_assert!(false, "model says fits={fits}, store said {outcome:?}"),
        }
    }
    for index in 0..4 {
        let name = stream_name(index);
        let stored = store
            .read_stream(&name, StreamRead::default())
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected = model.get(&name).cloned().unwrap_or_default();
        prop_assert_eq!(
            stored.iter().map(label).collect::<Vec<_>>(),
            expected.clone()
        );
        let versions: Vec<i64> = stored.iter().map(|e| e.stream_version).collect();
        prop_assert_eq!(versions, (1..=expected.len() as i64).collect::<Vec<_>>());
        let backward = store
            .read_stream(&name, StreamRead::backward())
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut reversed = expected;
        reversed.reverse();
        prop_assert_eq!(backward.iter().map(label).collect::<Vec<_>>(), reversed);
    }
    crate::helpers::all_visible(store).await;
    let category = format!("p{case}x0");
    let in_category = store
        .read_category(&category, LogCursor::START, 10_000)
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(
        in_category.iter().map(label).collect::<Vec<_>>(),
        model.get(&stream_name(0)).cloned().unwrap_or_default()
    );
    Ok(())
}

#[test]
fn random_appends_agree_with_an_in_memory_model() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (_db, store) = runtime.block_on(new_store());
    let config = ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    };
    proptest!(config, |(steps in proptest::collection::vec(step(), 1..12))| {
        runtime.block_on(run_case(&store, steps))?;
    });
}
