//! Consumer groups: a reactor split into partitions by stream, each
//! partition a subscription of its own (a *member*) with its own owner,
//! checkpoint, parked events and status, so several processes share one
//! reactor's work while each stream stays in order.
//!
//! A member is named `{subscription}.{index}-of-{count}`
//! (`inventory-reactor.1-of-4`); a reactor that is not split keeps its
//! plain name. Operators see and address members by these names. Which
//! streams a member reads is [`event_store::Partition`]: a hash of the
//! stream's id without its category, so an order's `order-`, `reservation-`
//! and `payment-` streams are in one partition.
//!
//! Projections are never split: a rebuild swaps a read model's tables,
//! which needs the one owner of all its streams.

use event_store::Partition;

/// One subscription's share of the log, as the runtime runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The subscription it is a share of (what the reactor is named; the
    /// ids of its effects derive from this name, so every member and
    /// layout derives the same ones).
    pub subscription: &'static str,
    /// `None`: the whole subscription, not split.
    pub partition: Option<Partition>,
}

impl Member {
    pub fn whole(subscription: &'static str) -> Member {
        Member {
            subscription,
            partition: None,
        }
    }

    /// The members of `subscription` split `count` ways (`count` 1: the
    /// whole subscription).
    pub fn layout(subscription: &'static str, count: u32) -> Vec<Member> {
        if count <= 1 {
            return vec![Member::whole(subscription)];
        }
        (0..count)
            .filter_map(|index| Partition::new(index, count))
            .map(|partition| Member {
                subscription,
                partition: Some(partition),
            })
            .collect()
    }

    /// What operators, checkpoints and statuses call it.
    pub fn name(&self) -> String {
        match self.partition {
            None => self.subscription.to_owned(),
            Some(partition) => format!(
                "{}.{}-of-{}",
                self.subscription,
                partition.index(),
                partition.count()
            ),
        }
    }

    /// The names of every member of this one's layout (itself included).
    pub fn layout_names(&self) -> Vec<String> {
        let count = self.partition.map_or(1, Partition::count);
        Member::layout(self.subscription, count)
            .iter()
            .map(Member::name)
            .collect()
    }

    /// Reads `name` as a member of `subscription`: the plain name, or a
    /// partition's.
    pub fn parse(subscription: &'static str, name: &str) -> Option<Member> {
        if name == subscription {
            return Some(Member::whole(subscription));
        }
        let (index, count) = name
            .strip_prefix(subscription)?
            .strip_prefix('.')?
            .split_once("-of-")?;
        // Canonical digits only, so one member has one name.
        let number = |text: &str| -> Option<u32> {
            let value: u32 = text.parse().ok()?;
            (value.to_string() == text).then_some(value)
        };
        let partition = Partition::new(number(index)?, number(count)?)?;
        (partition.count() > 1).then_some(Member {
            subscription,
            partition: Some(partition),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_as_the_same_member() {
        for count in [1, 2, 3, 64] {
            for member in Member::layout("inventory-reactor", count) {
                assert_eq!(
                    Member::parse("inventory-reactor", &member.name()),
                    Some(member.clone())
                );
                assert_eq!(member.layout_names().len(), count as usize);
            }
        }
        assert_eq!(
            Member::layout("order-reactor", 2)[1].name(),
            "order-reactor.1-of-2"
        );
    }

    #[test]
    fn other_names_are_not_members() {
        for name in [
            "inventory-reactor.2-of-2",
            "inventory-reactor.0-of-1",
            "inventory-reactor.01-of-2",
            "inventory-reactor.0-of-65",
            "inventory-reactor.-1-of-2",
            "inventory-reactorx",
            "inventory-reactor.",
            "inventory-reactor.0of2",
            "order-reactor.0-of-2",
        ] {
            assert_eq!(Member::parse("inventory-reactor", name), None, "{name}");
        }
    }
}
