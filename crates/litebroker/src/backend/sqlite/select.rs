//! SQL for "which messages of a queue": the one place a [`Filter`] becomes a
//! WHERE clause, shared by claim, hold, peek and move.

use rusqlite::types::Value;

use crate::message::Filter;

/// Which stored states a selection may pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum States {
    /// Visible messages only (the normal case).
    Pending,
    /// Visible or consumed (an exact-id move that revives a consumed message).
    PendingOrConsumed,
}

/// A WHERE clause over `messages` and its parameters, in order.
pub struct Selection {
    pub clause: String,
    pub params: Vec<Value>,
}

impl Selection {
    /// The messages of `queue` in `states` that pass `filter`.
    pub fn new(queue: &str, filter: &Filter, states: States) -> Self {
        let mut clause = String::from("queue = ?");
        clause.push_str(match states {
            States::Pending => " AND claimed = 0",
            States::PendingOrConsumed => " AND claimed IN (0, 1)",
        });
        let mut params = vec![Value::Text(queue.to_owned())];
        let bounds = [
            (" AND ts = ?", filter.id),
            (" AND ts > ?", filter.after),
            (" AND ts < ?", filter.before),
        ];
        for (sql, value) in bounds {
            if let Some(v) = value {
                clause.push_str(sql);
                params.push(Value::Integer(v));
            }
        }
        Selection { clause, params }
    }

    /// Adds a trailing parameter (e.g. a LIMIT or a position).
    pub fn with(mut self, value: i64) -> Vec<Value> {
        self.params.push(Value::Integer(value));
        self.params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_selection() {
        let s = Selection::new("q", &Filter::all(), States::Pending);
        assert_eq!(s.clause, "queue = ? AND claimed = 0");
        assert_eq!(s.params.len(), 1);
    }

    #[test]
    fn bounds_in_order() {
        let f = Filter {
            id: Some(5),
            after: Some(1),
            before: Some(9),
        };
        let s = Selection::new("q", &f, States::PendingOrConsumed);
        assert_eq!(
            s.clause,
            "queue = ? AND claimed IN (0, 1) AND ts = ? AND ts > ? AND ts < ?"
        );
        assert_eq!(s.with(10).len(), 5);
    }
}
