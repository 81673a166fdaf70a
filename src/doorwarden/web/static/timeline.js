// The event timeline: the household's events from the events API, newest first, with
// rings, people and motion marked apart and "new" for those this member had not seen;
// then it tells the API they are seen. A ring or detection pushed while the page is open
// (pwa.js re-dispatches the service worker's message) reloads the list.
(function () {
  "use strict";
  var root = document.getElementById("timeline");
  if (!root) return;
  var list = root.querySelector(".timeline");
  var statusLine = root.querySelector(".timeline-status");
  var household = root.dataset.household;
  var LABELS = { ring: "Ring", person: "Person", motion: "Motion" };
  var names = {};
  var template = document.getElementById("camera-names");
  if (template) {
    template.content.querySelectorAll("[data-id]").forEach(function (el) { names[el.dataset.id] = el.textContent; });
  }
  var format;
  try {
    format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium", timeZone: root.dataset.zone || undefined });
  } catch (err) {
    format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
  }
  var loading = false;
  var again = false;

  function query() {
    var params = new URLSearchParams();
    if (root.dataset.deviceId) params.set("device_id", root.dataset.deviceId);
    if (root.dataset.kind) params.set("kind", root.dataset.kind);
    if (root.dataset.day) params.set("day", root.dataset.day);
    params.set("limit", "100");
    return root.dataset.api + "?" + params.toString();
  }

  function link(href, text) {
    var a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    return a;
  }

  function item(event) {
    var kind = LABELS[event.kind] ? event.kind : "motion";
    var li = document.createElement("li");
    li.className = "event event-" + kind + (event.new ? " event-new" : "");
    li.dataset.id = event.id;
    li.dataset.kind = kind;
    var badge = document.createElement("span");
    badge.className = "badge event-kind kind-" + kind;
    badge.textContent = LABELS[kind];
    li.appendChild(badge);
    var camera = names[event.device_id] || "A removed camera";
    var what = document.createElement("strong");
    what.className = "event-camera";
    what.textContent = camera + (event.camera ? " · " + event.camera : "");
    li.appendChild(document.createTextNode(" "));
    li.appendChild(what);
    var when = document.createElement("time");
    when.dateTime = event.occurred_at;
    var at = new Date(event.occurred_at);
    when.textContent = isNaN(at) ? event.occurred_at : format.format(at);
    li.appendChild(document.createTextNode(" "));
    li.appendChild(when);
    if (event.new) {
      var fresh = document.createElement("span");
      fresh.className = "badge badge-new";
      fresh.textContent = "new";
      li.appendChild(document.createTextNode(" "));
      li.appendChild(fresh);
    }
    var actions = document.createElement("span");
    actions.className = "event-actions";
    if (kind === "ring" && names[event.device_id]) {
      actions.appendChild(link("/households/" + household + "/cameras/" + event.device_id + "/live", "Watch live"));
    }
    if (event.clip_id) {
      actions.appendChild(link("/households/" + household + "/clips/" + event.clip_id, "Open clip"));
    }
    li.appendChild(actions);
    return li;
  }

  function markSeen(ids) {
    if (!ids.length) return Promise.resolve();
    return fetch(root.dataset.api + "/seen", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": root.dataset.csrf },
      body: JSON.stringify({ ids: ids }),
    }).then(function (response) {
      root.dataset.seen = response.ok ? "marked" : "failed";
    });
  }

  function load() {
    if (loading) { again = true; return; }
    loading = true;
    fetch(query(), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status === 404 ? "Events are not available on this server yet." : "The events could not be loaded (" + response.status + ").");
        return response.json();
      })
      .then(function (events) {
        list.textContent = "";
        events.forEach(function (event) { list.appendChild(item(event)); });
        var fresh = events.filter(function (event) { return event.new; }).map(function (event) { return event.id; });
        statusLine.textContent = events.length
          ? events.length + (events.length === 1 ? " event" : " events") + (fresh.length ? ", " + fresh.length + " new." : ".")
          : "No events match.";
        root.dataset.state = "loaded";
        return markSeen(fresh);
      })
      .catch(function (err) {
        statusLine.textContent = err.message;
        root.dataset.state = "error";
      })
      .finally(function () {
        loading = false;
        if (again) { again = false; load(); }
      });
  }

  document.addEventListener("doorwarden:push", function (e) {
    var kind = e.detail && e.detail.kind;
    if (kind === "ring" || kind === "person" || kind === "motion") load();
  });
  load();
})();
