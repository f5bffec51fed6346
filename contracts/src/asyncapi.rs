//! The AsyncAPI 3.0.0 document of the contracts: one channel per contract
//! on the topic exchange (address = routing key), its message (payload =
//! the JSON Schema derived from the payload type, the AMQP headers the
//! relay sets, the correlation id) and a `send` operation.
//!
//! Generated from the types, so the document cannot drift from what is
//! published. Payload schemas are draft-07 (AsyncAPI's default schema
//! format is a superset of it) with every subschema inlined: a `$ref` into
//! a payload's own `definitions` would resolve against the document root.

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use crate::payloads::*;

/// The topic exchange the relay publishes to (relay's default).
pub const EXCHANGE: &str = "orderstream.events";

/// The AMQP channel and message bindings version used below.
const AMQP_BINDING_VERSION: &str = "0.3.0";

/// One contract as the document describes it.
struct Documented {
    name: &'static str,
    schema_version: u32,
    summary: &'static str,
    payload: Value,
}

fn documented<C: Contract + JsonSchema>(summary: &'static str) -> Documented {
    Documented {
        name: C::NAME,
        schema_version: C::SCHEMA_VERSION,
        summary,
        payload: payload_schema::<C>(),
    }
}

/// The payload's JSON Schema, draft-07, with no `$ref` and no `$schema`.
fn payload_schema<C: JsonSchema>() -> Value {
    let schema = SchemaSettings::draft07()
        .with(|settings| {
            settings.inline_subschemas = true;
            settings.meta_schema = None;
        })
        .into_generator()
        .into_root_schema_for::<C>();
    let mut value = schema.to_value();
    if let Some(object) = value.as_object_mut() {
        object.remove("definitions");
        object.remove("$defs");
    }
    value
}

/// Every contract of [`CONTRACTS`], with what the document says of it.
fn contracts() -> Vec<Documented> {
    vec![
        documented::<OrderPlacedV1>("An order was placed: its customer, lines, total and currency."),
        documented::<OrderCancelledV1>("An order was cancelled, with the reason."),
        documented::<InventoryReservedV1>("Stock was reserved for an order, per SKU and warehouse."),
        documented::<InventoryUnavailableV1>(
            "Stock could not be reserved for an order: the shortages.",
        ),
        documented::<OrderShippedV1>(
            "An order shipped: its lines and total. Superseded by order.shipped.v2; published beside it during the migration window.",
        ),
        documented::<OrderShippedV2>(
            "An order shipped: its lines and total as an amount with its currency. Replaces order.shipped.v1.",
        ),
        documented::<PaymentCapturedV1>("A payment attempt for an order was captured."),
        documented::<PaymentFailedV1>(
            "A payment attempt for an order failed; `final` says whether another follows.",
        ),
        documented::<OrderPaidV1>("An order is paid in full."),
        documented::<StockChangedV1>(
            "Stock of a SKU moved in one warehouse, with the warehouse's levels after it.",
        ),
    ]
}

/// The AMQP headers the relay sets on every message.
fn headers_schema() -> Value {
    json!({
        "type": "object",
        "required": ["stream_id", "log_position", "schema_version"],
        "properties": {
            "causation_id": {
                "type": "string", "format": "uuid",
                "description": "The command or event that caused the source event, when known."
            },
            "stream_id": {
                "type": "string",
                "description": "The source event's stream in orderstream's log (per-stream order is kept)."
            },
            "log_position": {
                "type": "integer", "minimum": 1,
                "description": "The source event's global position in orderstream's log."
            },
            "schema_version": {
                "type": "integer", "minimum": 1,
                "description": "The contract's schema version (the `vN` of its name)."
            },
            "traceparent": {
                "type": "string",
                "description": "W3C trace context of the relay's publish span, in the trace of the request that caused the event."
            }
        }
    })
}

fn message(contract: &Documented) -> Value {
    json!({
        "name": contract.name,
        "title": contract.name,
        "summary": contract.summary,
        "contentType": "application/json",
        "correlationId": {
            "description": "The AMQP correlation_id property: the correlation id of the request that caused the event. The AMQP message_id is the source event's id (or an id derived from it, stable across redeliveries).",
            "location": "$message.header#/correlation_id"
        },
        "headers": headers_schema(),
        "payload": contract.payload,
        "bindings": {
            "amqp": {
                "contentEncoding": "utf-8",
                "messageType": contract.name,
                "bindingVersion": AMQP_BINDING_VERSION
            }
        },
        "x-schema-version": contract.schema_version
    })
}

fn channel(contract: &Documented) -> Value {
    json!({
        "address": contract.name,
        "title": contract.name,
        "description": format!("Routing key {} on the topic exchange {EXCHANGE}.", contract.name),
        "messages": { contract.name: { "$ref": format!("#/components/messages/{}", contract.name) } },
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {
                    "name": EXCHANGE,
                    "type": "topic",
                    "durable": true,
                    "autoDelete": false,
                    "vhost": "/"
                },
                "bindingVersion": AMQP_BINDING_VERSION
            }
        }
    })
}

fn operation(contract: &Documented) -> Value {
    json!({
        "action": "send",
        "title": format!("Publish {}", contract.name),
        "summary": contract.summary,
        "channel": { "$ref": format!("#/channels/{}", contract.name) },
        "messages": [
            { "$ref": format!("#/channels/{0}/messages/{0}", contract.name) }
        ],
        "bindings": {
            "amqp": {
                "deliveryMode": 2,
                "mandatory": true,
                "ack": true,
                "bindingVersion": AMQP_BINDING_VERSION
            }
        }
    })
}

/// The AsyncAPI 3.0.0 document of every contract orderstream publishes.
/// `version` is the document's version (the orderstream release).
pub fn asyncapi_document(version: &str) -> Value {
    let contracts = contracts();
    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    for contract in &contracts {
        channels.insert(contract.name.to_owned(), channel(contract));
        operations.insert(format!("send.{}", contract.name), operation(contract));
        messages.insert(contract.name.to_owned(), message(contract));
    }
    json!({
        "asyncapi": "3.0.0",
        "id": "urn:orderstream:integration-events",
        "info": {
            "title": "orderstream integration events",
            "version": version,
            "description": "The versioned integration events orderstream publishes to RabbitMQ: one routing key per contract on a durable topic exchange. Messages are persistent JSON, at least once, in order per stream; a redelivery keeps its message_id. Consumers ignore unknown fields; any other change is a new version published beside the old one for a migration window.",
            "tags": [{ "name": "orderstream" }]
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": { "messages": messages }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_has_a_channel_a_message_with_its_schema_and_a_send_operation() {
        let document = asyncapi_document("0.0.0");
        assert_eq!(document["asyncapi"], "3.0.0");
        assert_eq!(
            document["channels"].as_object().map(Map::len),
            Some(CONTRACTS.len())
        );
        for (name, version) in CONTRACTS {
            let channel = &document["channels"][*name];
            assert_eq!(channel["address"], *name);
            assert_eq!(channel["bindings"]["amqp"]["exchange"]["name"], EXCHANGE);
            assert_eq!(channel["bindings"]["amqp"]["exchange"]["type"], "topic");
            let message = &document["components"]["messages"][*name];
            assert_eq!(message["x-schema-version"], *version);
            assert_eq!(message["contentType"], "application/json");
            assert_eq!(message["payload"]["type"], "object", "{name}");
            assert!(message["payload"]["properties"].is_object(), "{name}");
            assert!(
                message["headers"]["properties"]["log_position"].is_object(),
                "{name}"
            );
            let operation = &document["operations"][format!("send.{name}")];
            assert_eq!(operation["action"], "send");
            assert_eq!(operation["channel"]["$ref"], format!("#/channels/{name}"));
        }
    }

    #[test]
    fn payload_schemas_are_the_types_schemas_with_no_dangling_refs() {
        let document = asyncapi_document("0.0.0");
        let shipped = &document["components"]["messages"]["order.shipped.v1"]["payload"];
        assert_eq!(shipped["properties"]["total"]["type"], "string");
        assert_eq!(
            shipped["properties"]["lines"]["items"]["properties"]["unit_price"]["type"],
            "string"
        );
        let v2 = &document["components"]["messages"]["order.shipped.v2"]["payload"];
        assert_eq!(v2["properties"]["total"]["type"], "object");
        assert_eq!(
            v2["properties"]["total"]["properties"]["currency"]["type"],
            "string"
        );
        let text = serde_json::to_string(&document).expect("serializes");
        assert!(!text.contains("#/definitions/"), "{text}");
        assert!(!text.contains("#/$defs/"), "{text}");
    }

    #[test]
    fn the_document_round_trips_as_json() {
        let text = serde_json::to_string_pretty(&asyncapi_document("1.2.3")).expect("serializes");
        let parsed: Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(parsed["asyncapi"], "3.0.0");
        assert_eq!(parsed["info"]["version"], "1.2.3");
    }

    #[test]
    fn the_documented_contracts_are_exactly_the_published_ones() {
        let documented: Vec<(&str, u32)> = contracts()
            .iter()
            .map(|contract| (contract.name, contract.schema_version))
            .collect();
        assert_eq!(documented, CONTRACTS);
    }
}
