//! The integration messages the relay has published for a timeline's
//! events: the contracts' own mapping (`contracts::integration_events`)
//! of each event at or before the relay's checkpoint. Nothing when the
//! relay has never run against this database.

use std::collections::HashMap;

use event_store::{EventStore, RecordedEvent, StreamRead};
use projections::catalogue::INTEGRATION_RELAY;

use crate::error::ConsoleError;

/// Earlier events of one stream read at most to map an event that needs
/// its stream's history (an inventory SKU's); beyond, it is not shown.
const MAX_HISTORY: i64 = 2000;

/// For each event, the names of the contracts published for it (empty:
/// none, or not yet published).
pub async fn published(
    store: &EventStore,
    events: &[RecordedEvent],
) -> Result<Vec<Vec<&'static str>>, ConsoleError> {
    let Some(relay) = store.load_checkpoint(INTEGRATION_RELAY).await? else {
        return Ok(vec![Vec::new(); events.len()]);
    };
    let mut histories: HashMap<&str, Vec<RecordedEvent>> = HashMap::new();
    let mut names = Vec::with_capacity(events.len());
    for event in events {
        if event.cursor() > relay {
            names.push(Vec::new());
            continue;
        }
        let earlier: &[RecordedEvent] = if contracts::needs_history(event) {
            let needed = event.stream_version - 1;
            if needed > MAX_HISTORY {
                names.push(Vec::new());
                continue;
            }
            let history = match histories.get(event.stream_id.as_str()) {
                Some(history) if history.len() as i64 >= needed => history,
                _ => {
                    let read = store
                        .read_stream(
                            &event.stream_id,
                            StreamRead::forward_from(1).limit(needed.max(1)),
                        )
                        .await?;
                    histories.insert(&event.stream_id, read);
                    &histories[event.stream_id.as_str()]
                }
            };
            &history[..usize::try_from(needed).unwrap_or(0).min(history.len())]
        } else {
            &[]
        };
        // An event the mapping cannot read is drawn without messages; the
        // relay parks such an event, and the parked view shows why.
        names.push(
            contracts::integration_events(event, earlier)
                .map(|messages| messages.into_iter().map(|message| message.name).collect())
                .unwrap_or_default(),
        );
    }
    Ok(names)
}
