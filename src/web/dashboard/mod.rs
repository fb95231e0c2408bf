//! The dashboard (placeholder while it is built).
use super::WebState;
use axum::Router;
pub fn router(state: WebState) -> Router {
    Router::new().with_state(state)
}
