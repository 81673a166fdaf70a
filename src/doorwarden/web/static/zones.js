// A camera's settings page (docs/camera-settings.md, "On the web page"): the three zone
// layers drawn over a snapshot fetched on demand (the canvas is static/zone-editor.js),
// and the other settings as a form. Everything goes through the JSON API; the page keeps
// the overrides it will save (field -> value, dotted names as the agent's YAML spells
// them), saves them with the version it read (a change made elsewhere meanwhile is
// refused, not overwritten), then polls until the agent reports it applied that version,
// or its error.
//
// The snapshot is drawn through createImageBitmap: the page's CSP allows no blob: images,
// and the picture is never put anywhere but the editor's canvas.
(function () {
  "use strict";
  var root = document.getElementById("camera-settings");
  if (!root) return;

  var API = root.dataset.api;
  var CSRF = root.dataset.csrf;
  var POLL_MS = 300;
  var OFFLINE_POLL_MS = 2000;
  var SLOW_ANSWER_MS = 5000;

  var statusLine = document.getElementById("settings-status");
  var errorLine = document.getElementById("settings-error");
  var appliedLine = document.getElementById("applied-status");
  var snapshotStatus = document.getElementById("snapshot-status");
  var saveButton = document.getElementById("save-settings");

  var fieldEls = {}; // dotted name -> its .setting element
  root.querySelectorAll(".setting[data-field]").forEach(function (el) { fieldEls[el.dataset.field] = el; });
  var FIELD_NAMES = Object.keys(fieldEls);

  var server = null; // the last state the API answered with
  var saved = {}; // overrides as the server holds them (server.settings)
  var overrides = {}; // overrides as they will be saved
  var pollToken = 0;

  // The canvas and the polygon lists (static/zone-editor.js): it edits the page's values.
  var editor = window.DoorwardenZoneEditor.attach(root, {
    polygons: polygons,
    editable: editable,
    changed: function (layer) { clearError(layer); markSources(); },
    listOf: function (layer) { return fieldEls[layer] ? fieldEls[layer].querySelector("[data-polygons]") : null; },
  });

  // -- the API ------------------------------------------------------------------------

  function request(method, path, body) {
    var headers = { "Accept": "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = CSRF;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(API + path, {
      method: method, headers: headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  function failureOf(response) {
    return response.json().then(function (body) {
      var error = (body && body.error) || {};
      return { status: response.status, code: error.code || "", message: error.message || ("The server answered " + response.status + "."), details: error.details || null };
    }, function () {
      return { status: response.status, code: "", message: "The server answered " + response.status + ".", details: null };
    });
  }

  // -- values -------------------------------------------------------------------------

  function copy(value) { return value === undefined ? undefined : JSON.parse(JSON.stringify(value)); }
  function same(a, b) { return JSON.stringify(a) === JSON.stringify(b); }
  function has(object, key) { return Object.prototype.hasOwnProperty.call(object, key); }

  function applied() { return (server && server.applied) || null; }

  // The value the camera's file gives a field, where the agent told us (it reports every
  // field's effective value and where it came from); undefined when it is overridden.
  function fileValue(name) {
    var a = applied();
    if (!a || !a.effective || !a.sources) return undefined;
    return a.sources[name] === "file" ? a.effective[name] : undefined;
  }

  function valueOf(name) { return has(overrides, name) ? overrides[name] : fileValue(name); }

  function polygons(layer) { var list = valueOf(layer); return Array.isArray(list) ? list : []; }

  // Editing a layer that comes from the file starts from the file's polygons.
  function editable(layer) {
    if (!has(overrides, layer)) overrides[layer] = copy(polygons(layer));
    return overrides[layer];
  }

  function sourceOf(name) {
    var local = has(overrides, name);
    var dirty = !same(overrides[name], saved[name]);
    if (dirty) return local ? ["page", "this page (not saved)"] : ["file", "the camera's file (after saving)"];
    var a = applied();
    if (a && a.sources && a.version === server.version && a.sources[name]) {
      return a.sources[name] === "web" ? ["page", "this page"] : ["file", "the camera's file"];
    }
    return local ? ["page", "this page"] : ["file", "the camera's file"];
  }

  // -- the form -------------------------------------------------------------------------

  function fillField(name) {
    var el = fieldEls[name];
    var kind = el.dataset.kind;
    var value = valueOf(name);
    if (value === null) value = undefined; // a file that leaves it out: the agent's default
    if (kind === "bool") {
      var box = el.querySelector("input[type=checkbox]");
      box.checked = value === true;
      box.indeterminate = value === undefined;
    } else if (kind === "labels") {
      var chosen = value === undefined ? ["motion", "person", "ring"] : value;
      el.querySelectorAll("input[type=checkbox]").forEach(function (b) { b.checked = chosen.indexOf(b.value) >= 0; });
    } else if (kind === "number") {
      var input = el.querySelector("input");
      input.value = value === undefined || value === null ? "" : String(value);
      input.placeholder = value === undefined ? "from the camera's file" : "";
    }
  }

  function markSources() {
    FIELD_NAMES.forEach(function (name) {
      var el = fieldEls[name];
      var source = sourceOf(name);
      el.dataset.source = source[0];
      var badge = el.querySelector("[data-source]");
      if (badge) {
        badge.textContent = source[1];
        badge.classList.toggle("badge-ok", source[0] === "page");
      }
      var reset = el.querySelector(".reset-field");
      if (reset) reset.disabled = !has(overrides, name);
    });
  }

  function readField(name) {
    var el = fieldEls[name];
    var kind = el.dataset.kind;
    if (kind === "bool") {
      var box = el.querySelector("input[type=checkbox]");
      box.indeterminate = false;
      overrides[name] = box.checked;
    } else if (kind === "labels") {
      overrides[name] = Array.prototype.filter.call(el.querySelectorAll("input[type=checkbox]"), function (b) { return b.checked; }).map(function (b) { return b.value; });
    } else if (kind === "number") {
      var text = el.querySelector("input").value.trim();
      if (text === "") delete overrides[name];
      else overrides[name] = Number(text);
    }
    clearError(name);
    markSources();
  }

  FIELD_NAMES.forEach(function (name) {
    var el = fieldEls[name];
    if (el.dataset.kind === "polygons") return;
    el.addEventListener("change", function () { readField(name); });
    el.addEventListener("input", function () { readField(name); });
  });

  // The form is never posted: Save sends JSON (and Enter in a field must not reload).
  document.getElementById("settings-form").addEventListener("submit", function (event) { event.preventDefault(); });

  root.querySelectorAll(".reset-field").forEach(function (button) {
    button.addEventListener("click", function () {
      var name = button.dataset.reset;
      delete overrides[name];
      clearError(name);
      if (fieldEls[name].dataset.kind === "polygons") {
        editor.forget(name);
      } else {
        fillField(name);
      }
      markSources();
      editor.say(fieldTitle(name) + ": back to the camera's file when you save.");
    });
  });

  function fieldTitle(name) {
    var el = fieldEls[name];
    var title = el && el.querySelector("h3, label, legend");
    return title ? title.textContent.replace(/\s+/g, " ").trim().replace(/ (this page|the camera's file).*$/, "") : name;
  }

  // -- errors named by field ---------------------------------------------------------------

  function showError(message) {
    errorLine.textContent = message;
    errorLine.hidden = !message;
  }

  function clearError(name) {
    var el = fieldEls[name];
    if (!el) return;
    el.classList.remove("invalid");
    el.querySelectorAll("[aria-invalid]").forEach(function (i) { i.removeAttribute("aria-invalid"); });
    var line = el.querySelector("[data-error]");
    line.hidden = true;
    line.textContent = "";
    if (el.dataset.kind === "polygons") editor.clearInvalid(name);
  }

  function clearErrors() { FIELD_NAMES.forEach(clearError); showError(""); }

  // "privacy_zones.0.2.1" -> the privacy zones, polygon 0; "motion.sensitivity" -> itself.
  function fieldOf(path) {
    var best = null;
    FIELD_NAMES.forEach(function (name) {
      if ((path === name || path.indexOf(name + ".") === 0) && (!best || name.length > best.length)) best = name;
    });
    return best;
  }

  function showFieldError(path, message) {
    var name = path ? fieldOf(path) : null;
    // The API's message starts with the dotted path; the page shows the field's title.
    if (path && message.indexOf(path + ": ") === 0) message = message.slice(path.length + 2);
    if (!name) { showError(message); return; }
    var el = fieldEls[name];
    el.classList.add("invalid");
    var line = el.querySelector("[data-error]");
    line.textContent = message;
    line.hidden = false;
    showError(fieldTitle(name) + ": " + message);
    if (el.dataset.kind === "polygons") {
      var rest = path.slice(name.length + 1).split(".");
      var index = rest[0] === "" ? -1 : Number(rest[0]);
      editor.markInvalid(name, isNaN(index) ? -1 : index);
      el.scrollIntoView({ block: "nearest" });
    } else {
      var input = el.querySelector("input");
      el.querySelectorAll("input").forEach(function (i) { i.setAttribute("aria-invalid", "true"); });
      if (input) input.focus();
    }
  }

  // -- loading, saving, and waiting for the camera -----------------------------------------

  function take(state, keepEdits) {
    server = state;
    saved = copy(state.settings || {});
    if (!keepEdits) overrides = copy(saved);
    FIELD_NAMES.forEach(function (name) { if (fieldEls[name].dataset.kind !== "polygons" && !(keepEdits && has(overrides, name))) fillField(name); });
    markSources();
    editor.refresh();
  }

  function describeApplied() {
    var a = applied();
    if (a && a.version === server.version) {
      appliedLine.dataset.state = a.ok ? "applied" : "refused";
      appliedLine.textContent = a.ok ? "Applied" : "The camera did not apply these settings: " + (a.error || "no reason given") + ". It keeps the ones it had.";
      return true;
    }
    if (!server.connected) {
      appliedLine.dataset.state = "offline";
      appliedLine.textContent = "Waiting for the camera (offline). It gets these settings when it next connects.";
    } else {
      appliedLine.dataset.state = "waiting";
      appliedLine.textContent = "Sent to the camera; waiting for it to apply them…";
    }
    return false;
  }

  function load() {
    return request("GET", "/settings").then(function (response) {
      if (!response.ok) return failureOf(response).then(function (f) { throw f; });
      return response.json();
    });
  }

  // Poll until the agent reports the saved version (or a newer one), or its error.
  function awaitApplied(version) {
    var token = ++pollToken;
    var started = Date.now();
    function again(state) {
      if (token !== pollToken) return;
      var dirty = FIELD_NAMES.some(function (n) { return !same(overrides[n], saved[n]); });
      take(state, dirty);
      var a = applied();
      if (a && a.version >= version) { describeApplied(); return; }
      describeApplied();
      if (server.connected && Date.now() - started > SLOW_ANSWER_MS) {
        appliedLine.textContent = "Sent to the camera; it has not answered yet…";
      }
      setTimeout(function () {
        load().then(again, function (f) { if (token === pollToken) showError(f.message || String(f)); });
      }, server.connected ? POLL_MS : OFFLINE_POLL_MS);
    }
    return load().then(again);
  }

  function afterWrite(response) {
    if (response.ok) {
      return response.json().then(function (state) {
        take(state, false);
        statusLine.textContent = "Saved as version " + state.version + ".";
        return awaitApplied(state.version);
      });
    }
    return failureOf(response).then(function (f) {
      if (f.code === "version_conflict" || f.status === 409) {
        showError("These settings were changed elsewhere since this page loaded. Reload the page to see them (your changes here are not saved).");
      } else if (f.details && typeof f.details.field === "string") {
        showFieldError(f.details.field, f.message);
      } else {
        showError(f.message);
      }
      appliedLine.textContent = "";
      appliedLine.dataset.state = "";
    });
  }

  saveButton.addEventListener("click", function () {
    editor.finishDraft();
    clearErrors();
    saveButton.disabled = true;
    appliedLine.dataset.state = "saving";
    appliedLine.textContent = "Saving…";
    request("PUT", "/settings", { version: server ? server.version : 0, settings: overrides })
      .then(afterWrite)
      .catch(function (err) { showError("Could not save: " + err.message); appliedLine.textContent = ""; })
      .then(function () { saveButton.disabled = false; });
  });

  document.getElementById("reset-all").addEventListener("click", function () {
    clearErrors();
    editor.cancelDraft();
    editor.select(null);
    appliedLine.dataset.state = "saving";
    appliedLine.textContent = "Resetting…";
    request("DELETE", "/settings")
      .then(afterWrite)
      .catch(function (err) { showError("Could not reset: " + err.message); appliedLine.textContent = ""; });
  });

  // -- the snapshot -----------------------------------------------------------------------

  var snapshotButton = document.getElementById("snapshot-button");
  snapshotButton.addEventListener("click", function () {
    snapshotButton.disabled = true;
    snapshotStatus.textContent = "Asking the camera for a picture…";
    request("POST", "/snapshot")
      .then(function (response) {
        if (!response.ok) return failureOf(response).then(function (f) { throw f; });
        return response.blob().then(function (blob) { return createImageBitmap(blob); });
      })
      .then(function (bitmap) {
        editor.setImage(bitmap);
        root.dataset.snapshot = bitmap.width + "x" + bitmap.height;
        snapshotStatus.textContent = "Snapshot taken at " + new Date().toLocaleTimeString() + ".";
      }, function (f) {
        var message = f.message || String(f);
        if (f.code === "camera_offline") message = "The camera is offline: no snapshot. You can still draw and save; it gets the settings when it connects.";
        else if (f.status === 504) message = "The camera did not send a picture in time. Try again.";
        snapshotStatus.textContent = message;
      })
      .then(function () { snapshotButton.disabled = false; });
  });

  // -- start ------------------------------------------------------------------------------

  load().then(function (state) {
    take(state, false);
    statusLine.textContent = state.version ? "Settings version " + state.version + "." : "Nothing set on this page yet: every value comes from the camera's file.";
    root.dataset.ready = "true";
    if (describeApplied() || !state.version) {
      if (!state.version && !applied()) appliedLine.textContent = state.connected ? "" : "The camera is offline.";
      return;
    }
    awaitApplied(state.version);
  }, function (f) {
    statusLine.textContent = "";
    showError(f.message || String(f));
  });
})();
