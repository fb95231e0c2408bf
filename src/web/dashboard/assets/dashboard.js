// The dashboard's own script: live updates and actions. htmx loads and swaps the
// server-rendered parts; this adds what htmx leaves to us:
// - live: the API's event stream; on an event, every part marked
//   hx-trigger="refresh from:body" reloads (at most once a second);
// - actions: a button with data-post and data-json sends that JSON with the page's
//   CSRF token, shows the answer's message, and refreshes the parts.
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf-token"]');
  csrf = csrf ? csrf.content : "";
  var pending = null;
  function refresh() {
    if (pending) return;
    pending = setTimeout(function () {
      pending = null;
      htmx.trigger(document.body, "refresh");
    }, 1000);
  }
  function flash(text, failed) {
    var box = document.getElementById("flash");
    if (!box) return;
    box.textContent = text;
    box.className = failed ? "notice error" : "notice";
  }
  if (window.EventSource && document.body.dataset.live === "on") {
    var source = new EventSource("/api/v1/events");
    ["punches", "device", "sink", "cycle", "lagged"].forEach(function (kind) {
      source.addEventListener(kind, refresh);
    });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-post]");
    if (!button) return;
    event.preventDefault();
    button.disabled = true;
    fetch(button.dataset.post, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: button.dataset.json || "{}",
    })
      .then(function (response) {
        return response.json().then(function (answer) {
          flash(answer.message || answer.detail || response.statusText, !response.ok);
        });
      })
      .catch(function (error) { flash(String(error), true); })
      .then(function () { button.disabled = false; refresh(); });
  });
})();
