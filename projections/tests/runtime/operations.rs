//! Reset, rebuild and temporal stock.
