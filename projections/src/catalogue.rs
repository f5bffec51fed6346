//! Every subscription of orderstream, in one place: its name (what
//! operators type), the stream category it reads, and whether it is a
//! projection (rebuildable) or a reactor. Names and categories come from
//! the subscribers' own constants and the aggregates' stream categories, so
//! each is spelled once.

use aggregates::order::Order;
use aggregates::Aggregate;

use crate::reactors::{fulfilment, inventory, order, payment};
use crate::read_models::{orders, payments, stock};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriberKind {
    /// A read model: rebuildable from the log.
    Projection,
    /// A step of the choreography.
    Reactor,
}

/// One subscription of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogueEntry {
    pub name: &'static str,
    /// The one stream category it reads; `None` for several.
    pub category: Option<&'static str>,
    pub kind: SubscriberKind,
}

const fn projection(name: &'static str, category: &'static str) -> CatalogueEntry {
    CatalogueEntry {
        name,
        category: Some(category),
        kind: SubscriberKind::Projection,
    }
}

const fn reactor(name: &'static str, category: Option<&'static str>) -> CatalogueEntry {
    CatalogueEntry {
        name,
        category,
        kind: SubscriberKind::Reactor,
    }
}

/// Every subscription the runtime can run (the fulfilment reactor only
/// runs in `auto` fulfilment). A test checks it against what it starts.
pub const CATALOGUE: &[CatalogueEntry] = &[
    projection(
        orders::OrderSummaries::NAME,
        orders::OrderSummaries::CATEGORY,
    ),
    projection(stock::StockLevels::NAME, stock::StockLevels::CATEGORY),
    projection(payments::Payments::NAME, payments::Payments::CATEGORY),
    reactor(inventory::NAME, Some(Order::CATEGORY)),
    reactor(order::NAME, None),
    reactor(fulfilment::NAME, Some(Order::CATEGORY)),
    reactor(payment::NAME, Some(Order::CATEGORY)),
];

/// The integration relay (crate `relay`): it runs only when a broker is
/// configured, so it is listed (status, metrics) once it has run.
pub const INTEGRATION_RELAY: &str = "integration-relay";

/// Subscriptions that run only when configured; listed with the
/// catalogue once they have reported a status.
pub const OPTIONAL: &[CatalogueEntry] = &[reactor(INTEGRATION_RELAY, None)];

/// The catalogue entry named `name`.
pub fn find(name: &str) -> Option<&'static CatalogueEntry> {
    CATALOGUE.iter().find(|entry| entry.name == name)
}

/// The names of the read models that can be rebuilt.
pub fn projection_names() -> impl Iterator<Item = &'static str> {
    CATALOGUE
        .iter()
        .filter(|entry| entry.kind == SubscriberKind::Projection)
        .map(|entry| entry.name)
}
