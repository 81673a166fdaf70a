// The account page's "Notifications on your devices": lists this member's push
// subscriptions, revokes one, and subscribes this browser (PushManager with the
// instance's VAPID key, then POST /api/v1/account/push-subscriptions).
(function () {
  "use strict";
  var section = document.getElementById("push");
  if (!section) return;
  var API = "/api/v1/account/push-subscriptions";
  var KEY_API = "/api/v1/notify/vapid-public-key";
  var STORED = "doorwarden.push-subscription"; // this browser's subscription id
  var SUBSCRIBE_TIMEOUT_MS = 20000;
  var statusLine = section.querySelector(".push-status");
  var form = section.querySelector(".push-subscribe");
  var table = section.querySelector(".push-subscriptions");
  var rows = table.querySelector("tbody");
  var empty = section.querySelector(".push-empty");
  var label = section.querySelector("#push-label");
  var supported = "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

  function say(text, state) {
    statusLine.textContent = text;
    section.dataset.state = state;
  }

  function call(method, url, body) {
    var headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["X-CSRF-Token"] = section.dataset.csrf;
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (response) {
      if (response.status === 204) return null;
      return response.json().catch(function () { return null; }).then(function (data) {
        if (response.ok) return data;
        var error = new Error((data && data.error && data.error.message) || "The server said " + response.status + ".");
        error.status = response.status;
        throw error;
      });
    });
  }

  function guessLabel() {
    var ua = navigator.userAgent;
    var browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrom(e|ium)\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "Browser";
    var system = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Mac OS X/.test(ua) ? "macOS" : /Windows/.test(ua) ? "Windows" : /Linux/.test(ua) ? "Linux" : "";
    return system ? browser + " on " + system : browser;
  }

  function when(value) {
    if (!value) return "never";
    var at = new Date(value);
    return isNaN(at) ? value : at.toLocaleString();
  }

  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function render(subscriptions) {
    var mine = localStorage.getItem(STORED);
    rows.textContent = "";
    subscriptions.forEach(function (sub) {
      var tr = document.createElement("tr");
      tr.dataset.id = sub.id;
      var name = document.createElement("th");
      name.scope = "row";
      name.textContent = sub.label || "Unnamed device";
      if (sub.id === mine) {
        var badge = document.createElement("span");
        badge.className = "badge";
        badge.textContent = "this browser";
        name.appendChild(document.createTextNode(" "));
        name.appendChild(badge);
      }
      tr.appendChild(name);
      cell(tr, sub.endpoint_host || "");
      cell(tr, when(sub.created_at));
      cell(tr, when(sub.last_success_at));
      var button = document.createElement("button");
      button.type = "button";
      button.className = "danger small";
      button.textContent = "Revoke";
      button.setAttribute("aria-label", "Revoke notifications to " + (sub.label || "this device"));
      button.addEventListener("click", function () { revoke(sub.id); });
      cell(tr, "").appendChild(button);
      rows.appendChild(tr);
    });
    table.hidden = !subscriptions.length;
    empty.hidden = !!subscriptions.length;
    var here = subscriptions.some(function (sub) { return sub.id === mine; });
    if (!supported) {
      say("This browser cannot receive push notifications. On an iPhone or iPad, add doorwarden to the home screen first (Share, then Add to Home Screen).", "unsupported");
    } else if (Notification.permission === "denied") {
      say("Notifications are blocked for this site in this browser's settings.", "blocked");
    } else if (here) {
      say("This browser gets your notifications.", "subscribed");
    } else {
      say("This browser does not get notifications yet.", "ready");
    }
    form.hidden = !supported || here || Notification.permission === "denied";
  }

  function refresh() {
    return call("GET", API).then(render, function (err) {
      form.hidden = true;
      say(err.status === 404 ? "Push notifications are not available on this server yet." : err.message, "error");
    });
  }

  function base64UrlToBytes(text) {
    var padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    var raw = atob(padded);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  function sameKey(subscription, key) {
    var current = subscription.options && subscription.options.applicationServerKey;
    if (!current) return false;
    var a = new Uint8Array(current);
    if (a.length !== key.length) return false;
    for (var i = 0; i < a.length; i++) if (a[i] !== key[i]) return false;
    return true;
  }

  function browserSubscription(registration, key) {
    return registration.pushManager.getSubscription().then(function (existing) {
      if (existing && sameKey(existing, key)) return existing;
      var cleared = existing ? existing.unsubscribe() : Promise.resolve();
      return cleared.then(function () {
        return registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
      });
    });
  }

  // The browser's own push service (its vendor's) may be unreachable: say so, not hang.
  function within(ms, promise, message) {
    var timer;
    var late = new Promise(function (resolve, reject) {
      timer = setTimeout(function () { reject(new Error(message)); }, ms);
    });
    return Promise.race([promise, late]).finally(function () { clearTimeout(timer); });
  }

  function subscribe(event) {
    event.preventDefault();
    var button = form.querySelector("button");
    button.disabled = true;
    say("Asking this browser for permission…", "working");
    Notification.requestPermission()
      .then(function (permission) {
        if (permission !== "granted") throw new Error("Notifications were not allowed in this browser.");
        return Promise.all([
          navigator.serviceWorker.register("/sw.js", { scope: "/" }).then(function () { return navigator.serviceWorker.ready; }),
          call("GET", KEY_API),
        ]);
      })
      .then(function (both) {
        say("Registering with this browser's push service…", "working");
        return within(SUBSCRIBE_TIMEOUT_MS, browserSubscription(both[0], base64UrlToBytes(both[1].key)),
          "this browser's push service did not answer. Is this device offline?");
      })
      .then(function (subscription) {
        var body = subscription.toJSON();
        return call("POST", API, { endpoint: body.endpoint, keys: body.keys, label: (label.value || guessLabel()).slice(0, 100) });
      })
      .then(function (created) {
        localStorage.setItem(STORED, created.id);
        return refresh();
      })
      .catch(function (err) {
        say("Could not turn notifications on: " + err.message, "error");
      })
      .finally(function () { button.disabled = false; });
  }

  function revoke(id) {
    call("DELETE", API + "/" + encodeURIComponent(id))
      .then(function () {
        if (id !== localStorage.getItem(STORED)) return null;
        localStorage.removeItem(STORED);
        if (!supported) return null;
        return navigator.serviceWorker.getRegistration("/").then(function (registration) {
          return registration && registration.pushManager.getSubscription();
        }).then(function (subscription) {
          return subscription && subscription.unsubscribe();
        });
      })
      .then(refresh, function (err) { say("Could not revoke: " + err.message, "error"); });
  }

  label.value = guessLabel();
  form.addEventListener("submit", subscribe);
  refresh();
})();
