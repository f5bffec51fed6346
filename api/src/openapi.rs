//! The OpenAPI document, generated from the handlers' annotations so that
//! it cannot drift from the code.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{audit, inventory, operations, orders, service};

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
        operations::reset_subscription,
        operations::rebuild_projection,
        service::health,
        service::ready,
        service::metrics,
        service::openapi,
    ),
    modifiers(&AdminToken),
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
