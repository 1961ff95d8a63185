//! The routes, one module per group, assembled here.

pub mod admin;
pub mod dashboard;
pub mod events;
pub mod keys;
pub mod pyqueue;
pub mod queues;
pub mod system;
pub mod topics;

use axum::Router;

use crate::AppState;

/// Every route of the server.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(pyqueue::router())
        .merge(queues::router())
        .merge(topics::router())
        .merge(admin::router())
        .merge(events::router())
        .merge(keys::router())
        .merge(system::router())
        .merge(dashboard::router())
}
