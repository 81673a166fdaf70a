// Live view: fragmented MP4 from the server's WebSocket into a MediaSource
// (docs/live-view.md). No framework: the stream is appended in order, the player is kept
// near the live edge, and the socket reconnects on its own.
//
// The player attaches to an element with data-stream (and data-camera) holding a <video>,
// a .live-status line and optionally a mute button: the live page's #live, or a tile of
// the camera grid (grid.js), through window.DoorwardenLive.attach(root) -> {stop}.
//
// iPhone Safari has no MediaSource, only ManagedMediaSource (iOS 17.1+): the same API,
// except that the browser says when it wants data (startstreaming/endstreaming) and
// the video must opt out of AirPlay (disableRemotePlayback) or offer another source.
// A live stream cannot wait, so it keeps appending; endstreaming trims what is behind.
// Where neither exists the page says so instead of showing a black box.
//
// End-to-end households (docs/live-view.md): an init with an "e2e" block loads
// /static/e2e/live.js, which checks the camera's signature and unwraps the session key with
// the member's key on this device; each payload is decrypted, in order, before it is
// appended. No key here, or a payload that does not open: the status line says so (with a
// link to the key page) and the stream stops; nothing undecrypted reaches the player.
(function () {
  "use strict";

  var LOCKED = "This household is end-to-end encrypted: unlock your key on this device to watch.";
  var e2eModule = null;

  function loadE2E() {
    if (!e2eModule) e2eModule = import("/static/e2e/live.js");
    return e2eModule;
  }

  var NO_MSE = "This browser cannot play live video: it has neither Media Source " +
    "Extensions nor Managed Media Source. On an iPhone or iPad, update to iOS 17.1 or later.";

  var PLAIN_REFUSED = "This household is end-to-end encrypted, but this stream arrived " +
    "unencrypted, so it is not shown. Waiting for the camera's sealed stream…";

  function mediaSourceClass() {
    if (window.MediaSource) return { Type: window.MediaSource, managed: false };
    if (window.ManagedMediaSource) return { Type: window.ManagedMediaSource, managed: true };
    return null;
  }

  function attach(root) {
    var video = root.querySelector("video");
    var statusLine = root.querySelector(".live-status");
    var muteButton = root.querySelector(".live-mute, #live-mute") || document.createElement("button");
    var stopped = false;
    var camera = root.dataset.camera || "";
    var path = root.dataset.stream + (camera ? "?camera=" + encodeURIComponent(camera) : "");
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;

    var LIVE_JUMP_S = 0.5; // further behind than this: jump to the live edge
    var LIVE_CATCH_UP_S = 0.15; // further behind than this: play a little faster
    var KEEP_S = 20; // buffered video kept behind the playhead
    var socket = null;
    var mediaSource = null;
    var buffer = null;
    var queue = [];
    var retryMs = 1000;
    var gotMedia = false;
    var current = null; // the stream playing: {sealed, chain, session, failed}
    var halted = false; // an e2e stream that cannot be shown: no reconnecting either

    function show(text, state) {
      statusLine.textContent = text;
      root.dataset.state = state;
    }

    function onState(message) {
      if (halted || (current && current.refused)) return;
      var sealed = current && current.session ? " · end-to-end encrypted" : "";
      if (message.state === "streaming") show("Live" + sealed, "streaming");
      else if (message.state === "connecting") show("Connecting to the camera…", "connecting");
      else if (message.state === "offline") show(message.message || "The camera is offline. Waiting for it…", "offline");
      else show(message.message || "The camera cannot stream right now.", "error");
    }

    function onInit(message) {
      var kind = mediaSourceClass();
      if (!kind) {
        show(NO_MSE, "error");
        return;
      }
      if (!kind.Type.isTypeSupported(message.mime)) {
        show("This browser cannot play this camera's video (" + message.mime + ").", "error");
        return;
      }
      queue = [];
      buffer = null;
      if (!message.e2e && root.dataset.e2eRequired === "1") {
        // The household is end-to-end: a plain stream is not the camera's sealed one (or
        // the camera has not heard of the switch yet; it restarts sealed within a GOP).
        current = { refused: true };
        root.dataset.e2e = "plain-refused";
        show(PLAIN_REFUSED, "error");
        return;
      }
      current = message.e2e ? openSealed(message) : { sealed: false };
      mediaSource = new kind.Type();
      var source = mediaSource;
      if (kind.managed) {
        video.disableRemotePlayback = true; // ManagedMediaSource plays only with AirPlay off
        source.addEventListener("startstreaming", function () { if (source === mediaSource) chase(); });
        source.addEventListener("endstreaming", function () { if (source === mediaSource) trim(2); });
      }
      root.dataset.player = kind.managed ? "managed" : "mse";
      video.src = URL.createObjectURL(source);
      source.addEventListener("sourceopen", function () {
        URL.revokeObjectURL(video.src);
        if (source !== mediaSource) return;
        buffer = source.addSourceBuffer(message.mime);
        buffer.mode = "segments";
        buffer.addEventListener("updateend", pump);
        pump();
      });
      // Browsers only autoplay muted: the sound starts muted, one press away.
      muteButton.hidden = !message.audio;
      if (message.audio) {
        video.muted = true;
        muteButton.textContent = "Unmute";
        muteButton.setAttribute("aria-pressed", "false");
      }
    }

    function openSealed(message) {
      var stream = { sealed: true, failed: false, session: null };
      root.dataset.e2e = "opening";
      stream.chain = loadE2E().then(function (mod) {
        return mod.openSession(message.e2e, {
          keyUrl: root.dataset.stream + "/key", userId: document.body.dataset.userId || "",
        });
      }).then(function (session) {
        stream.session = session;
        if (stream !== current) return;
        root.dataset.e2e = "verified";
        if (root.dataset.state === "streaming") show("Live · end-to-end encrypted", "streaming");
      });
      stream.chain.catch(function (err) { sealedFailed(stream, err); });
      return stream;
    }

    function receiveSealed(stream, data) {
      stream.chain = stream.chain.then(function () {
        return stream.session.open(data);
      }).then(function (plain) {
        if (stream !== current || stream.failed) return;
        queue.push(plain);
        pump();
      });
      stream.chain.catch(function (err) { sealedFailed(stream, err); });
    }

    function sealedFailed(stream, err) {
      if (stream.failed || stream !== current || stopped) return;
      stream.failed = true;
      halted = true;
      queue = [];
      if (socket) socket.close(1000); // the camera need not stream for a page that cannot show it
      var code = (err && err.code) || "error";
      root.dataset.e2e = code;
      if (code === "LiveLocked") {
        show(LOCKED, "locked");
        var link = document.createElement("a");
        link.textContent = "Unlock or create your key";
        statusLine.appendChild(document.createTextNode(" "));
        statusLine.appendChild(link);
        loadE2E().then(function (mod) { return mod.keyPage(root.dataset.stream + "/key"); })
          .then(function (page) { link.href = document.body.dataset.keyPage || page || "/account"; });
        return;
      }
      var why = err && err.message ? err.message : String(err);
      show("This live video failed its end-to-end check and is not shown (" + why + "). Reload to try again.", "error");
    }

    function pump() {
      if (!buffer || buffer.updating || !queue.length) return;
      try {
        buffer.appendBuffer(queue.shift());
      } catch (err) {
        if (err.name === "QuotaExceededError") trim(0);
        else show("The video could not be played: " + err.message, "error");
        return;
      }
      chase();
    }

    // Stay near the live edge: after a stall, a dropped backlog or a background tab.
    function chase() {
      var ranges = video.buffered;
      if (!ranges.length) return;
      var end = ranges.end(ranges.length - 1);
      var start = ranges.start(ranges.length - 1);
      var lag = end - video.currentTime;
      if (lag > LIVE_JUMP_S || video.currentTime < start) {
        video.currentTime = Math.max(start, end - 0.1);
      }
      video.playbackRate = lag > LIVE_CATCH_UP_S ? 1.15 : 1.0;
      if (video.paused && !video.ended) video.play().catch(function () {});
      if (video.currentTime - ranges.start(0) > 2 * KEEP_S) trim(KEEP_S);
    }

    function trim(keepS) {
      if (!buffer || buffer.updating || !video.buffered.length) return;
      var until = video.currentTime - keepS;
      if (until > video.buffered.start(0)) buffer.remove(0, until);
    }

    function connect() {
      if (stopped) return;
      if (!mediaSourceClass()) {
        show(NO_MSE, "error"); // nothing to play it with: do not make the camera stream
        return;
      }
      show(gotMedia ? "Reconnecting…" : "Connecting…", "connecting");
      socket = new WebSocket(url);
      socket.binaryType = "arraybuffer";
      // Talk (talk.js) sends over this same socket: it listens for each new one.
      root.liveSocket = socket; root.dispatchEvent(new CustomEvent("doorwarden:socket"));
      socket.onopen = function () { retryMs = 1000; };
      socket.onmessage = function (event) {
        if (stopped || halted) return;
        if (typeof event.data === "string") {
          var message = JSON.parse(event.data);
          if (message.type === "state") onState(message);
          else if (message.type === "init") onInit(message);
          return;
        }
        if (current && current.refused) return; // never shown: see onInit
        gotMedia = true;
        if (current && current.sealed) {
          receiveSealed(current, event.data);
          return;
        }
        queue.push(event.data);
        pump();
      };
      socket.onclose = function (event) {
        socket = null;
        if (stopped || halted) return;
        if (event.code === 4403) {
          show("You can no longer watch this camera.", "error");
          return;
        }
        show("Disconnected. Reconnecting in " + Math.round(retryMs / 1000) + " s…", "reconnecting");
        setTimeout(connect, retryMs);
        retryMs = Math.min(retryMs * 2, 15000);
      };
    }

    function onVisible() {
      if (!document.hidden) chase();
    }

    function onPageHide() {
      if (socket) socket.close(1000);
    }

    function stop() {
      stopped = true;
      document.removeEventListener("visibilitychange", onVisible);
      window.removeEventListener("pagehide", onPageHide);
      if (socket) socket.close(1000);
      socket = null;
      mediaSource = null;
      buffer = null;
      queue = [];
      current = null;
      video.removeAttribute("src");
      video.load();
      root.dataset.state = "stopped";
    }

    muteButton.addEventListener("click", function () {
      video.muted = !video.muted;
      muteButton.textContent = video.muted ? "Unmute" : "Mute";
      muteButton.setAttribute("aria-pressed", video.muted ? "false" : "true");
      if (!video.muted && video.paused) video.play().catch(function () {});
    });
    document.addEventListener("visibilitychange", onVisible);
    window.addEventListener("pagehide", onPageHide);
    connect();
    return { stop: stop };
  }

  window.DoorwardenLive = { attach: attach };
  var page = document.getElementById("live");
  if (page) attach(page);
})();
