//! The OpenAPI document, generated from the handlers' annotations so that
//! it cannot drift from the code.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{audit, inventory, operations, orders, service};

mod params;

use params::ParameterBounds;
pub mod responses;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "orderstream",
        description = "Event-sourced order fulfilment: inventory, orders and their choreography, \
                       audit of the event log, operations. Every error is application/problem+json.",
    ),
    paths(
        inventory::receive,
        inventory::adjust,
        inventory::stock_level,
        inventory::stock_history,
        orders::place_order,
        orders::get_order,
        orders::cancel_order,
        orders::ship_order,
        orders::retry_payment,
        orders::order_history,
        orders::order_timeline,
        audit::read_stream,
        audit::read_log,
        operations::list_subscriptions,
        operations::list_parked,
        operations::replay_parked,
        operations::replay_parked_event,
        operations::request_status,
        operations::reset_subscription,
        operations::rebuild_projection,
        service::health,
        service::ready,
        service::metrics,
        service::openapi,
        service::asyncapi,
    ),
    components(responses(
        responses::BadRequest,
        responses::Unprocessable,
        responses::PayloadTooLarge,
        responses::Unauthorized,
        responses::Forbidden,
        responses::Unavailable,
    )),
    modifiers(&AdminToken, &ParameterBounds),
    tags(
        (name = "inventory"), (name = "orders"), (name = "audit"),
        (name = "operations", description = "Needs Authorization: Bearer $ORDERSTREAM_ADMIN_TOKEN"),
        (name = "service"),
    )
)]
pub struct ApiDoc;

struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[cfg(test)]
mod tests {
    //! The document states what the server enforces: the bounds come from
    //! the constants the domain and the handlers check, and every operation
    //! lists the shared answers it can give.

    use aggregates::limits::{
        MAX_CUSTOMER_ID_CHARS, MAX_LINES, MAX_LINE_QUANTITY, MAX_REASON_CHARS, MAX_STOCK_MOVEMENT,
    };
    use serde_json::Value;
    use utoipa::OpenApi;

    use super::ApiDoc;
    use crate::routes::paging::MAX_LIMIT;

    fn document() -> Value {
        serde_json::to_value(ApiDoc::openapi()).expect("the document serialises")
    }

    fn property<'a>(doc: &'a Value, schema: &str, field: &str) -> &'a Value {
        &doc["components"]["schemas"][schema]["properties"][field]
    }

    #[test]
    fn body_bounds_are_the_domains_limits() {
        let doc = document();
        let movement = MAX_STOCK_MOVEMENT as i64;
        let receipt = property(&doc, "ReceiptRequest", "quantity");
        assert_eq!(receipt["minimum"], 1);
        assert_eq!(receipt["maximum"], movement);
        let adjustment = property(&doc, "AdjustmentRequest", "quantity");
        assert_eq!(adjustment["minimum"], -movement);
        assert_eq!(adjustment["maximum"], movement);
        let line = property(&doc, "OrderLineRequest", "quantity");
        assert_eq!(line["minimum"], 1);
        assert_eq!(line["maximum"], MAX_LINE_QUANTITY);
        let lines = property(&doc, "PlaceOrderRequest", "lines");
        assert_eq!(lines["minItems"], 1);
        assert_eq!(lines["maxItems"], MAX_LINES);
        let customer = property(&doc, "PlaceOrderRequest", "customer_id");
        assert_eq!(customer["maxLength"], MAX_CUSTOMER_ID_CHARS);
        for (schema, field) in [("AdjustmentRequest", "reason"), ("CancelRequest", "reason")] {
            assert_eq!(property(&doc, schema, field)["maxLength"], MAX_REASON_CHARS);
        }
    }

    #[test]
    fn a_cancel_may_come_without_a_body() {
        // The handler takes the body as optional (no reason: "cancelled on
        // request"); a document that required one made schemathesis expect
        // a refusal of the bodiless cancel the server rightly accepts.
        let doc = document();
        let body = &doc["paths"]["/orders/{order_id}/cancel"]["post"]["requestBody"];
        assert!(!body["required"].as_bool().unwrap_or(false), "{body}");
        assert!(body["content"]["application/json"].is_object(), "{body}");
    }

    #[test]
    fn every_limit_parameter_is_bounded_by_the_page_maximum() {
        let doc = document();
        let mut seen = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("operations") {
                for parameter in operation["parameters"].as_array().into_iter().flatten() {
                    if parameter["name"] == "limit" {
                        seen += 1;
                        let schema = &parameter["schema"];
                        assert_eq!(schema["minimum"], 1, "{method} {path}");
                        assert_eq!(schema["maximum"], MAX_LIMIT, "{method} {path}");
                    }
                }
            }
        }
        assert!(seen >= 6, "limit on every list, saw {seen}");
    }

    #[test]
    fn every_operation_lists_the_shared_answers_it_can_give() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("operations") {
                let responses = operation["responses"].as_object().expect("responses");
                let has = |status: &str| responses.contains_key(status);
                let service = [
                    "/health",
                    "/ready",
                    "/metrics",
                    "/openapi.json",
                    "/asyncapi.json",
                ]
                .contains(&path.as_str());
                if !service {
                    assert!(has("503"), "{method} {path}: overload and timeouts are 503");
                }
                if !operation["requestBody"].is_null() {
                    assert!(
                        has("400") && has("413"),
                        "{method} {path}: a body can be malformed or too large"
                    );
                }
                if !operation["security"].is_null() {
                    assert!(has("401") && has("403"), "{method} {path}: admin token");
                }
            }
        }
    }
}
