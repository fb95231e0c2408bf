//! `/api/v1/events`: Server-Sent Events as things happen — `punches` (new punches
//! journaled, per device), `device` (a device went up or down), `sink` (a sink's
//! pending count or state changed), `cycle` (a cycle ended). A watcher that falls
//! behind gets a `lagged` event and should reload what it shows.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::web::WebState;
use crate::web::problem::Problem;

/// The live stream.
#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    responses(
        (status = 200, content_type = "text/event-stream", body = String, description = "Events `punches`, `device`, `sink`, `cycle` and `lagged`, each with a JSON object as data"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn stream(
    State(state): State<WebState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures::stream::unfold(state.events.watch(), |mut events| async move {
        let event = match events.recv().await {
            Ok(event) => Event::default()
                .event(event.kind)
                .json_data(&event.data)
                .unwrap_or_else(|_| Event::default().event(event.kind)),
            Err(RecvError::Lagged(missed)) => {
                Event::default().event("lagged").data(missed.to_string())
            }
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), events))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
