//! The warehouse allocation policy, as a table of cases.

use aggregates::inventory::{allocate, Allocation, Shortfall};

use crate::helpers::wh;

fn stock(warehouses: &[(&str, u64)]) -> Vec<(aggregates::values::Warehouse, u64)> {
    warehouses.iter().map(|(name, q)| (wh(name), *q)).collect()
}

fn allocs(parts: &[(&str, u64)]) -> Vec<Allocation> {
    parts
        .iter()
        .map(|(name, quantity)| Allocation {
            warehouse: wh(name),
            quantity: *quantity,
        })
        .collect()
}

#[test]
fn allocation_follows_the_policy_table() {
    type Case<'a> = (
        &'a str,
        u64,
        &'a [(&'a str, u64)],
        Result<&'a [(&'a str, u64)], (u64, u64)>,
    );
    let cases: &[Case] = &[
        ("one warehouse fills the line", 3, &[("main", 5)], Ok(&[("main", 3)])),
        ("exact fit", 5, &[("main", 5)], Ok(&[("main", 5)])),
        ("prefers the only warehouse that fills the whole line over more stock elsewhere combined",
            4, &[("a", 3), ("b", 4), ("c", 3)], Ok(&[("b", 4)])),
        ("among several that fill it, the one with most available", 2, &[("a", 3), ("b", 9), ("c", 5)], Ok(&[("b", 2)])),
        ("ties go to the first name", 2, &[("north", 5), ("east", 5)], Ok(&[("east", 2)])),
        ("splits only when no single warehouse can, most stock first", 8, &[("a", 3), ("b", 5), ("c", 2)], Ok(&[("b", 5), ("a", 3)])),
        ("split ties by name", 6, &[("z", 3), ("y", 3), ("x", 3)], Ok(&[("x", 3), ("y", 3)])),
        ("split takes a partial amount from the last warehouse", 7, &[("a", 3), ("b", 5), ("c", 2)], Ok(&[("b", 5), ("a", 2)])),
        ("empty warehouses are skipped", 1, &[("a", 0), ("b", 1)], Ok(&[("b", 1)])),
        ("zero quantity needs nothing", 0, &[("a", 0)], Ok(&[])),
        ("not enough in total", 11, &[("a", 3), ("b", 5), ("c", 2)], Err((11, 10))),
        ("no warehouses", 1, &[], Err((1, 0))),
    ];
    for (name, quantity, warehouses, expected) in cases {
        let expected = match expected {
            Ok(parts) => Ok(allocs(parts)),
            Err((requested, available)) => Err(Shortfall {
                requested: *requested,
                available: *available,
            }),
        };
        assert_eq!(
            allocate(*quantity, &stock(warehouses)),
            expected,
            "case: {name}"
        );
    }
}
