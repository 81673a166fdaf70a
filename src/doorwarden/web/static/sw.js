// doorwarden's service worker (served at /sw.js, scope /). It does two things only:
// shows a notification for each push (CONTEXT: notify/ payload v1) and opens the page a
// tapped notification points at. It caches nothing: every page is fetched fresh.
//
// A push carries no image and no household name. For a clip with a thumbnail, the worker
// fetches it with the member's own session (same origin, audited like any thumbnail view).
"use strict";

var ICON = "/static/icons/icon-192.png";
var THUMBNAIL_PATH = /^\/api\/v1\/households\/[0-9a-fA-F-]{36}\/clips\/[0-9a-fA-F-]{36}\/thumbnail$/;
var THUMBNAIL_TIMEOUT_MS = 4000;
var KINDS = ["ring", "person", "motion", "integrity_alert", "legal_notice"];

self.addEventListener("install", function () {
  self.skipWaiting();
});

self.addEventListener("activate", function (event) {
  // Take the open pages at once, so a tapped notification can steer them.
  event.waitUntil(self.clients.claim());
});

// A path on this origin, or "/" for anything else: a notification never opens another site.
function sameOriginPath(url) {
  if (typeof url !== "string" || !url) return "/";
  try {
    var target = new URL(url, self.location.origin);
    if (target.origin !== self.location.origin) return "/";
    return target.pathname + target.search + target.hash;
  } catch (err) {
    return "/";
  }
}

function text(value, fallback, max) {
  return typeof value === "string" && value ? value.slice(0, max) : fallback;
}

// The payload as sent, or a generic one: a push must always show something.
function parse(event) {
  var data = null;
  try {
    data = event.data ? event.data.json() : null;
  } catch (err) {
    data = null;
  }
  if (!data || typeof data !== "object" || data.v !== 1) {
    return { kind: "unknown", id: "", title: "doorwarden", body: "Something happened at home.", url: "/", thumbnail: null, at: null };
  }
  return {
    kind: KINDS.indexOf(data.kind) >= 0 ? data.kind : "unknown",
    id: text(data.id, "", 64),
    title: text(data.title, "doorwarden", 200),
    body: text(data.body, "", 500),
    url: sameOriginPath(data.url),
    thumbnail: typeof data.thumbnail === "string" && THUMBNAIL_PATH.test(data.thumbnail) ? data.thumbnail : null,
    at: text(data.at, null, 64),
  };
}

// The thumbnail as a data: URL (a notification cannot show a blob: URL from a worker),
// or null: no thumbnail, end-to-end household, signed out, slow or failed fetch.
function thumbnail(path) {
  if (!path) return Promise.resolve(null);
  var controller = new AbortController();
  var timer = setTimeout(function () { controller.abort(); }, THUMBNAIL_TIMEOUT_MS);
  return fetch(path, { credentials: "same-origin", signal: controller.signal })
    .then(function (response) {
      if (!response.ok || (response.headers.get("content-type") || "").indexOf("image/") !== 0) return null;
      return response.arrayBuffer().then(function (buffer) {
        var bytes = new Uint8Array(buffer);
        var binary = "";
        for (var i = 0; i < bytes.length; i += 0x8000) {
          binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
        }
        return "data:" + response.headers.get("content-type").split(";")[0] + ";base64," + btoa(binary);
      });
    })
    .catch(function () { return null; })
    .finally(function () { clearTimeout(timer); });
}

function tellOpenPages(message) {
  return self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (pages) {
    pages.forEach(function (page) { page.postMessage({ type: "doorwarden:push", payload: message }); });
  });
}

self.addEventListener("push", function (event) {
  var message = parse(event);
  var ring = message.kind === "ring";
  var shown = thumbnail(message.thumbnail).then(function (image) {
    var options = {
      body: message.body,
      tag: message.id || message.kind,
      renotify: true,
      requireInteraction: ring,
      icon: ICON,
      badge: ICON,
      timestamp: message.at ? Date.parse(message.at) || Date.now() : Date.now(),
      data: { url: message.url, kind: message.kind },
    };
    if (image) options.image = image;
    return self.registration.showNotification(message.title, options);
  });
  event.waitUntil(Promise.all([shown, tellOpenPages(message)]));
});

// Focus a page already showing the target; else steer an open page there; else open one.
// Claimed first: a page loaded while this worker was still installing is not yet its own,
// and a worker may only navigate the pages it controls.
function open(url) {
  var target = new URL(url, self.location.origin).href;
  return self.clients.claim().then(function () {
    return self.clients.matchAll({ type: "window", includeUncontrolled: true });
  }).then(function (pages) {
    for (var i = 0; i < pages.length; i++) {
      if (pages[i].url === target && "focus" in pages[i]) return pages[i].focus();
    }
    var page = pages.find(function (p) { return p.frameType !== "nested" && "navigate" in p; });
    if (page) {
      return page.navigate(target)
        .then(function (moved) { return moved && moved.focus ? moved.focus().catch(function () { return moved; }) : moved; })
        .catch(function () { return self.clients.openWindow(target); });
    }
    return self.clients.openWindow(target);
  });
}

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var data = event.notification.data || {};
  event.waitUntil(open(sameOriginPath(data.url)));
});
