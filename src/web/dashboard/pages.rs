//! The pages: overview, punches, problems, one device. Each is a frame around a part
//! (`/parts/…`) that htmx reloads when the event stream says something changed; the
//! first render includes the part, so a page is whole without JavaScript too.

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{Path, Query, RawQuery, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{Markup, PreEscaped, html};
use serde_json::{Value, json};

use super::layout;
use crate::web::WebState;
use crate::web::api::punches::{PunchFilter, search};
use crate::web::api::sinks::{SinkView, sinks};
use crate::web::auth::Caller;
use crate::web::problem::Problem;
use crate::web::view::{self, DeviceStatus, DeviceView};

type Page = Result<Markup, Response>;

fn failed(problem: Problem) -> Response {
    let message = problem.detail.clone();
    let status = axum::http::StatusCode::from_u16(problem.status)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        layout::bare("Not available", html! { p.error { (message) } }),
    )
        .into_response()
}

/// A part that reloads on `refresh` (an event) and every minute (ages move on).
fn live(id: &str, source: &str, content: Markup) -> Markup {
    html! {
        div id=(id) hx-get=(source) hx-trigger="refresh from:body, every 60s" hx-swap="innerHTML" {
            (content)
        }
    }
}

pub async fn overview(State(state): State<WebState>, Extension(caller): Extension<Caller>) -> Page {
    let part = overview_content(&state).await.map_err(failed)?;
    Ok(layout::page(
        "Overview",
        "/",
        &caller,
        html! { h1 { "Overview" } (live("overview", "/parts/overview", part)) },
    ))
}

pub async fn overview_part(State(state): State<WebState>) -> Page {
    overview_content(&state).await.map_err(failed)
}

/// The overview's content, rendered at most once a second for everyone watching.
async fn overview_content(state: &WebState) -> Result<Markup, Problem> {
    let html = state
        .overview_now
        .get(async || render_overview(state).await.map(Markup::into_string))
        .await?;
    Ok(PreEscaped(html.as_str().to_owned()))
}

async fn render_overview(state: &WebState) -> Result<Markup, Problem> {
    let devices = view::devices(state).await.map_err(Problem::ledger)?;
    let sinks = sinks(state).await?;
    let quarantined = state
        .reader
        .quarantine_count()
        .await
        .map_err(Problem::ledger)?;
    let cycles = state.reader.cycles(5).await.map_err(Problem::ledger)?;
    let up = devices
        .iter()
        .filter(|device| device.status == DeviceStatus::Up)
        .count();
    let configured = devices.iter().filter(|device| device.configured).count();
    let today: u64 = devices.iter().map(|device| device.punches_today).sum();
    let waiting: u64 = sinks.iter().map(|sink| sink.pending).sum();
    let refused: u64 = sinks.iter().map(|sink| sink.rejected + sink.unmapped).sum();
    Ok(html! {
        div.tiles {
            div.tile #tile-up { b { (up) " / " (configured) } "devices answering" }
            div.tile #tile-today { b { (today) } "punches today" }
            div.tile #tile-waiting { b { (waiting) } "waiting for a sink" }
            div.tile #tile-problems { b { (quarantined + refused) } a href="/problems" { "problems" } }
        }
        section {
            h2 { "Devices" }
            div.scroll { (device_table(&devices)) }
        }
        section {
            h2 { "Punches today" }
            (chart(&devices))
        }
        section {
            h2 { "Where punches go" }
            div.scroll { (sink_table(&sinks)) }
        }
        section {
            h2 { "Recent errors" }
            (recent_errors(&devices, &sinks, &cycles))
        }
    })
}

fn status(device: &DeviceView) -> Markup {
    let (class, text) = match device.status {
        DeviceStatus::Up => ("up", "up"),
        DeviceStatus::Down => ("down", "down"),
        DeviceStatus::Unknown => ("muted", "not yet read"),
        DeviceStatus::AwaitingApproval => ("wait", "awaiting approval"),
        DeviceStatus::Rejected => ("muted", "rejected"),
    };
    html! { span class={"dot " (class)} { (text) } }
}

fn device_table(devices: &[DeviceView]) -> Markup {
    html! {
        table #devices {
            thead { tr {
                th { "Device" } th { "State" } th.wide { "Kind" } th { "Last contact" }
                th.n { "Today" } th.n.wide { "Not delivered" } th.wide { "Last error" }
            } }
            tbody {
                @for device in devices {
                    tr data-device=(device.name) {
                        td { a href={"/devices/" (path_segment(&device.name))} { (device.name) } }
                        td { (status(device)) }
                        td.wide { (device.kind) }
                        td { (ago(device.last_contact.as_deref())) }
                        td.n.today { (device.punches_today) }
                        td.n.wide { (device.undelivered) }
                        td.wide {
                            @if device.status == DeviceStatus::Down || device.status == DeviceStatus::AwaitingApproval {
                                span.error { (device.last_error.as_deref().unwrap_or(&device.location)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Horizontal bars, one per device, drawn on the server; widths in percent so that
/// the chart fits a phone as well as a wide screen, text at its natural size.
fn chart(devices: &[DeviceView]) -> Markup {
    let most = devices
        .iter()
        .map(|device| device.punches_today)
        .max()
        .unwrap_or(0)
        .max(1);
    let row = 26;
    let height = row * devices.len().max(1) + 4;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" width="100%" height="{height}" role="img" aria-label="Punches today per device">"#
    );
    for (index, device) in devices.iter().enumerate() {
        let y = index * row + 4;
        let width = device.punches_today as f64 / most as f64 * 50.0;
        let _ = write!(
            svg,
            r#"<text x="0" y="{}">{}</text><rect x="35%" y="{y}" width="{width:.1}%" height="18" rx="3"></rect><text x="{:.1}%" y="{}">{}</text>"#,
            y + 14,
            escape(&truncate(&device.name, 30)),
            36.0 + width,
            y + 14,
            device.punches_today
        );
    }
    svg.push_str("</svg>");
    html! { (PreEscaped(svg)) }
}

fn escape(text: &str) -> String {
    let mut out = String::new();
    let _ = maud::Escaper::new(&mut out).write_str(text);
    out
}

fn truncate(text: &str, most: usize) -> String {
    if text.chars().count() <= most {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(most - 1).collect();
        cut.push('…');
        cut
    }
}

fn sink_table(sinks: &[SinkView]) -> Markup {
    html! {
        table #sinks {
            thead { tr {
                th { "Sink" } th { "State" } th.wide { "Writes to" } th.n { "Delivered today" }
                th.n { "Waiting" } th.n { "Refused" }
            } }
            tbody {
                @for sink in sinks {
                    tr data-sink=(sink.name) {
                        td { (sink.name) }
                        td {
                            @if sink.down {
                                span.dot.down { "cannot be reached" }
                            } @else if sink.failing > 0 {
                                span.dot.wait { (sink.failing) " failing, next try " (ago_or_in(sink.next_retry.as_deref())) }
                            } @else {
                                span.dot.up { "ok" }
                            }
                        }
                        td.wide.muted { (sink.target) }
                        td.n { (sink.delivered_today) }
                        td.n.pending { (sink.pending) }
                        td.n { @if sink.rejected + sink.unmapped > 0 { a href="/problems" { (sink.rejected + sink.unmapped) } } @else { "0" } }
                    }
                }
            }
        }
    }
}

fn recent_errors(devices: &[DeviceView], sinks: &[SinkView], cycles: &[Value]) -> Markup {
    let mut lines: Vec<(String, String)> = Vec::new();
    for device in devices {
        if let (Some(error), Some(at)) = (&device.last_error, &device.last_error_at) {
            lines.push((at.clone(), format!("{}: {error}", device.name)));
        }
    }
    for cycle in cycles {
        let at = cycle
            .get("started_at")
            .and_then(Value::as_str)
            .unwrap_or_default();
        for problem in cycle
            .get("problems")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(problem) = problem.as_str() {
                lines.push((at.to_owned(), problem.to_owned()));
            }
        }
        for sink in cycle
            .get("sinks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = sink.get("name").and_then(Value::as_str).unwrap_or_default();
            for key in ["down", "last_failure"] {
                if let Some(text) = sink.get(key).and_then(Value::as_str) {
                    lines.push((at.to_owned(), format!("{name}: {text}")));
                }
            }
        }
    }
    lines.sort_by(|a, b| b.0.cmp(&a.0));
    lines.dedup_by(|a, b| a.1 == b.1);
    lines.truncate(10);
    let down: Vec<&SinkView> = sinks.iter().filter(|sink| sink.down).collect();
    html! {
        @if lines.is_empty() && down.is_empty() {
            p.muted { "None." }
        } @else {
            ul #errors {
                @for (at, line) in &lines { li { span.muted { (ago(Some(at))) } " — " (line) } }
            }
        }
    }
}

/// "3 min ago" (the exact time on hover).
fn ago(text: Option<&str>) -> Markup {
    let Some(text) = text else {
        return html! { span.muted { "never" } };
    };
    let Ok(at) = DateTime::parse_from_rfc3339(text) else {
        return html! { (text) };
    };
    let seconds = (Utc::now() - at.with_timezone(&Utc)).num_seconds().max(0) as u64;
    html! { time datetime=(text) title=(text) { (crate::duration::display(std::time::Duration::from_secs(seconds))) " ago" } }
}

fn ago_or_in(text: Option<&str>) -> Markup {
    let Some(at) = text.and_then(|text| DateTime::parse_from_rfc3339(text).ok()) else {
        return html! { "soon" };
    };
    let seconds = (at.with_timezone(&Utc) - Utc::now()).num_seconds();
    if seconds <= 0 {
        return html! { "now" };
    }
    html! { "in " (crate::duration::display(std::time::Duration::from_secs(seconds as u64))) }
}

/// A path segment with everything but unreserved characters percent-encoded.
pub fn path_segment(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

// ---- punches ----

pub async fn punches(
    State(state): State<WebState>,
    Extension(caller): Extension<Caller>,
    Query(filter): Query<PunchFilter>,
    RawQuery(raw): RawQuery,
) -> Page {
    let devices = view::devices(&state)
        .await
        .map_err(|error| failed(Problem::ledger(error)))?;
    let sinks = sinks(&state).await.map_err(failed)?;
    let results = punches_content(&state, &filter, raw.as_deref()).await;
    let source = format!("/parts/punches?{}", raw.unwrap_or_default());
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    Ok(layout::page(
        "Punches",
        "/punches",
        &caller,
        html! {
            h1 { "Punches" }
            section {
                form.search #search method="get" action="/punches" {
                    label { "Device" select name="device" {
                        option value="" { "any" }
                        @for device in devices.iter() {
                            option value=(device.name) selected[filter.device.as_deref() == Some(device.name.as_str())] { (device.name) }
                        }
                    } }
                    label { "PIN" input name="pin" value=(text(&filter.pin)) inputmode="numeric"; }
                    label { "From" input type="date" name="from" value=(text(&filter.from)); }
                    label { "To" input type="date" name="to" value=(text(&filter.to)); }
                    label { "Sink" select name="sink" {
                        option value="" { "any" }
                        @for sink in &sinks {
                            option value=(sink.name) selected[filter.sink.as_deref() == Some(sink.name.as_str())] { (sink.name) }
                        }
                    } }
                    label { "Delivery" select name="state" {
                        option value="" { "any" }
                        @for state in crate::ledger::DeliveryState::ALL {
                            option value=(state.name()) selected[filter.state.as_deref() == Some(state.name())] { (state.name()) }
                        }
                    } }
                    button type="submit" { "Search" }
                }
            }
            (live("results", &source, results))
        },
    ))
}

pub async fn punches_part(
    State(state): State<WebState>,
    Query(filter): Query<PunchFilter>,
    RawQuery(raw): RawQuery,
) -> Markup {
    punches_content(&state, &filter, raw.as_deref()).await
}

async fn punches_content(state: &WebState, filter: &PunchFilter, raw: Option<&str>) -> Markup {
    let page = match search(state, filter).await {
        Ok(page) => page,
        Err(problem) => return html! { section { p.error role="alert" { (problem.detail) } } },
    };
    // The same search, without the cursor: for the export and the next page.
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if key != "cursor" && !value.is_empty() {
            query.append_pair(&key, &value);
        }
    }
    let query = query.finish();
    html! {
        section {
            p {
                a #export href={"/api/v1/punches.csv?" (query)} download="punches.csv" { "Export as CSV" }
            }
            @if page.punches.is_empty() {
                p.muted #no-punches { "No punch matches." }
            } @else {
                div.scroll {
                    table #punches {
                        thead { tr {
                            th { "Time (device clock)" } th { "Device" } th { "PIN" } th.wide { "Punch" } th { "Delivered to" }
                        } }
                        tbody {
                            @for punch in &page.punches {
                                tr {
                                    td { (punch.local_time) }
                                    td { (punch.device) }
                                    td.pin { (punch.user_id) }
                                    td.wide { (punch.punch) }
                                    td {
                                        @for delivery in &punch.deliveries {
                                            span class=(delivery_class(&delivery.state)) title=(delivery.reason.as_deref().unwrap_or("")) {
                                                (delivery.sink) " " (delivery.state)
                                            }
                                            " "
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(next) = &page.next {
                    p { a #next href={"/punches?" (query) "&cursor=" (next)} { "Older punches →" } }
                }
            }
        }
    }
}

fn delivery_class(state: &str) -> &'static str {
    match state {
        "delivered" | "already" | "skipped" => "up",
        "rejected" | "unmapped" | "withheld" => "down",
        _ => "wait",
    }
}

// ---- problems ----

pub async fn problems(State(state): State<WebState>, Extension(caller): Extension<Caller>) -> Page {
    let part = problems_content(&state).await.map_err(failed)?;
    Ok(layout::page(
        "Problems",
        "/problems",
        &caller,
        html! { h1 { "Problems" } (live("problems", "/parts/problems", part)) },
    ))
}

pub async fn problems_part(State(state): State<WebState>) -> Page {
    problems_content(&state).await.map_err(failed)
}

async fn problems_content(state: &WebState) -> Result<Markup, Problem> {
    let refusals = state.reader.refusals().await.map_err(Problem::ledger)?;
    let sinks = sinks(state).await?;
    let reasons = state
        .reader
        .quarantine_reasons()
        .await
        .map_err(Problem::ledger)?;
    let quarantined = state
        .reader
        .quarantined(20, None)
        .await
        .map_err(Problem::ledger)?;
    let devices = view::devices(state).await.map_err(Problem::ledger)?;
    let held: Vec<&DeviceView> = devices
        .iter()
        .filter(|device| device.status == DeviceStatus::AwaitingApproval)
        .collect();
    let failing: Vec<&SinkView> = sinks.iter().filter(|sink| sink.failing > 0).collect();
    Ok(html! {
        section {
            h2 { "Refused by a sink" }
            p.muted { "Punches a sink rejected, or whose PIN it does not know. Fix the cause (map the PIN in the sink, say), then retry the group." }
            @if refusals.is_empty() {
                p.muted #no-refusals { "None." }
            } @else {
                div.scroll { table #refusals {
                    thead { tr { th { "Sink" } th { "Why" } th.n { "Punches" } th {} } }
                    tbody {
                        @for refusal in &refusals {
                            tr {
                                td { (refusal.sink) }
                                td {
                                    span.down { (refusal.state) } ": " (refusal.reason)
                                    @if !refusal.pins.is_empty() { " — " span.pins { (refusal.pins.join(", ")) } }
                                }
                                td.n { (refusal.punches) }
                                td { button.retry type="button" data-post="/api/v1/retry" data-json=(json!({
                                    "sink": refusal.sink,
                                    "rejected": refusal.state == "rejected",
                                    "unmapped": refusal.state == "unmapped",
                                    "reason": (refusal.state == "rejected").then_some(&refusal.reason),
                                }).to_string()) { "Retry" } }
                            }
                        }
                    }
                } }
            }
        }
        @if !failing.is_empty() {
            section {
                h2 { "Failing, tried again by themselves" }
                table #failing {
                    tbody {
                        @for sink in &failing {
                            tr {
                                td { (sink.name) }
                                td { (sink.failing) " punch(es), next try " (ago_or_in(sink.next_retry.as_deref())) }
                                td { button type="button" data-post="/api/v1/retry" data-json=(json!({ "sink": sink.name, "failed": true }).to_string()) { "Try now" } }
                            }
                        }
                    }
                }
            }
        }
        @if !held.is_empty() {
            section {
                h2 { "Terminals waiting for approval" }
                p.muted { "They push to this server but are not configured, and keep their punches until you approve them (they are then known as \"ADMS\" and their serial, in this computer's time zone; a [[device]] with kind = \"adms\" in the configuration can name them for good)." }
                ul #held {
                    @for device in &held {
                        @let serial = device.serial.clone().unwrap_or_default();
                        li data-serial=(serial) {
                            (device.name) " — last contact " (ago(device.last_contact.as_deref())) " "
                            button.approve type="button" data-post={"/api/v1/terminals/" (path_segment(&serial)) "/approve"} { "Approve" }
                            " "
                            button.plain.reject type="button" data-post={"/api/v1/terminals/" (path_segment(&serial)) "/reject"} { "Reject" }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Quarantine" }
            p.muted { "Records a device sent that cannot be punches (no PIN, an impossible time…). They are kept for you to look at; fix them on the device." }
            @if reasons.is_empty() {
                p.muted #no-quarantine { "None." }
            } @else {
                div.scroll { table #quarantine-reasons {
                    thead { tr { th { "Why" } th.n { "Records" } } }
                    tbody { @for (reason, count) in &reasons { tr { td { (reason) } td.n { (count) } } } }
                } }
                details {
                    summary { "The newest records" }
                    div.scroll { table {
                        thead { tr { th { "When" } th { "Device" } th { "Why" } th.wide { "Record" } } }
                        tbody { @for entry in &quarantined { tr {
                            td { (ago(Some(&entry.quarantined_at))) } td { (entry.device) } td { (entry.reason) }
                            td.wide { code { (truncate(&entry.record.to_string(), 160)) } }
                        } } }
                    } }
                }
            }
        }
    })
}

// ---- one device ----

pub async fn device(
    State(state): State<WebState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Page {
    let part = device_content(&state, &name).await.map_err(failed)?;
    Ok(layout::page(
        &name,
        "",
        &caller,
        html! {
            h1 { (name) }
            (live("device", &format!("/parts/devices/{}", path_segment(&name)), part))
        },
    ))
}

pub async fn device_part(State(state): State<WebState>, Path(name): Path<String>) -> Page {
    device_content(&state, &name).await.map_err(failed)
}

async fn device_content(state: &WebState, name: &str) -> Result<Markup, Problem> {
    let device = crate::web::api::devices::find(state, name).await?;
    let filter = PunchFilter {
        device: Some(name.to_owned()),
        limit: Some("20".to_owned()),
        ..PunchFilter::default()
    };
    let recent = search(state, &filter).await?;
    let cycles = state.reader.cycles(20).await.map_err(Problem::ledger)?;
    let history: Vec<&Value> = cycles
        .iter()
        .filter_map(|cycle| {
            cycle
                .get("devices")?
                .as_array()?
                .iter()
                .find(|entry| entry.get("name").and_then(Value::as_str) == Some(name))
        })
        .collect();
    let pushes = device.kind == "adms";
    let commands = match (&device.serial, pushes) {
        (Some(serial), true) => state
            .reader
            .commands(Some(serial), 20)
            .await
            .map_err(Problem::ledger)?,
        _ => Vec::new(),
    };
    let encoded = path_segment(name);
    Ok(html! {
        section {
            p { (status(&device)) " · " (device.kind) " · " (device.location) }
            table #facts { tbody {
                tr { th { "Last contact" } td { (ago(device.last_contact.as_deref())) } }
                @if let Some(serial) = &device.serial { tr { th { "Serial" } td { (serial) } } }
                @if let Some(firmware) = &device.firmware { tr { th { "Firmware" } td { (firmware) } } }
                @if let Some(drift) = device.clock_drift_seconds { tr { th { "Clock" } td { (format!("{drift:+.0} s against this computer")) } } }
                tr { th { "Punches today" } td { (device.punches_today) } }
                tr { th { "Not delivered yet" } td { (device.undelivered) } }
                @if let Some(error) = &device.last_error {
                    tr { th { "Last error" } td.error { (error) " (" (ago(device.last_error_at.as_deref())) ")" } }
                }
            } }
            @if device.configured {
                p {
                    @if pushes {
                        @for (command, label) in [("log", "Send new punches now"), ("info", "Report its details"), ("set-time", "Set its clock"), ("check", "Check its data")] {
                            button type="button" data-post={"/api/v1/devices/" (encoded) "/commands"} data-json=(json!({ "command": command }).to_string()) { (label) }
                            " "
                        }
                    } @else {
                        button #sync-now type="button" data-post={"/api/v1/devices/" (encoded) "/sync"} { "Read it now" }
                    }
                }
            }
        }
        @if pushes {
            section {
                h2 { "Commands" }
                @if commands.is_empty() { p.muted { "None yet." } } @else {
                    div.scroll { table {
                        thead { tr { th { "#" } th { "Command" } th { "Queued" } th { "Answer" } } }
                        tbody { @for command in &commands { tr {
                            td { (command.id) }
                            td { code { (crate::adms::user_control::redacted(&command.command).replace('\t', " ")) } }
                            td { (ago(Some(&command.queued_at))) }
                            td { @match (command.return_code, &command.result_at) {
                                (Some(0), _) => span.up { "done" },
                                (Some(code), _) => span.down { "refused (" (code) ")" },
                                (None, Some(_)) => "answered",
                                (None, None) => span.wait { "waiting" },
                            } }
                        } } }
                    } }
                }
            }
        }
        section {
            h2 { "Latest punches" }
            @if recent.punches.is_empty() { p.muted { "None yet." } } @else {
                div.scroll { table {
                    thead { tr { th { "Time" } th { "PIN" } th { "Punch" } th { "Delivered to" } } }
                    tbody { @for punch in &recent.punches { tr {
                        td { (punch.local_time) } td { (punch.user_id) } td { (punch.punch) }
                        td { @for delivery in &punch.deliveries { span class=(delivery_class(&delivery.state)) { (delivery.sink) " " (delivery.state) } " " } }
                    } } }
                } }
                p { a href={"/punches?device=" (form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>())} { "All its punches →" } }
            }
        }
        @if !history.is_empty() {
            section {
                h2 { "Its last cycles" }
                div.scroll { table {
                    thead { tr { th.n { "Read" } th.n { "New" } th.n { "Delivered" } th { "Error" } } }
                    tbody { @for entry in &history { tr {
                        td.n { (entry.get("fetched").and_then(Value::as_u64).unwrap_or(0)) }
                        td.n { (entry.get("new").and_then(Value::as_u64).unwrap_or(0)) }
                        td.n { (entry.get("delivered").and_then(Value::as_u64).unwrap_or(0)) }
                        td.error { (entry.pointer("/error/message").and_then(Value::as_str).unwrap_or("")) }
                    } } }
                } }
            }
        }
    })
}
