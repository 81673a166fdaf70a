// On every page of a signed-in member: registers the service worker (/sw.js) and, while
// the app is open, rings a chime and shows a banner when the worker passes on a ring.
// Other pages listen for the "doorwarden:push" event this re-dispatches (the timeline
// reloads its list). The chime is synthesised with WebAudio: no sound file to fetch.
(function () {
  "use strict";
  var root = document.documentElement;
  var audio = null;

  function context() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    if (!audio) audio = new Context();
    return audio;
  }

  // Browsers start audio suspended until the person interacts with the page: the first
  // click or key unlocks it, so a later ring can sound.
  function unlock() {
    var ctx = context();
    if (ctx && ctx.state === "suspended") ctx.resume().catch(function () {});
  }
  ["pointerdown", "keydown"].forEach(function (name) {
    document.addEventListener(name, unlock, { once: true, capture: true });
  });

  // Ding-dong: two bell-like tones (E5 then C5) with a fast attack and a long decay.
  function tone(ctx, frequency, start, length) {
    var osc = ctx.createOscillator();
    var gain = ctx.createGain();
    osc.type = "sine";
    osc.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, start);
    gain.gain.exponentialRampToValueAtTime(0.4, start + 0.01);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + length);
    osc.connect(gain);
    gain.connect(ctx.destination);
    osc.start(start);
    osc.stop(start + length + 0.05);
  }

  function chime() {
    var ctx = context();
    // Counted whether or not the browser lets it sound yet (tests and the banner read it).
    root.dataset.chimes = String(Number(root.dataset.chimes || "0") + 1);
    if (!ctx) return;
    if (ctx.state === "suspended") ctx.resume().catch(function () {});
    var now = ctx.currentTime + 0.02;
    tone(ctx, 659.25, now, 0.9);
    tone(ctx, 523.25, now + 0.45, 1.2);
  }

  function banner(message) {
    var box = document.getElementById("ring-banner");
    if (!box) {
      box = document.createElement("div");
      box.id = "ring-banner";
      box.className = "ring-banner";
      box.setAttribute("role", "alert");
      document.body.appendChild(box);
    }
    box.textContent = "";
    var title = document.createElement("strong");
    title.textContent = message.title || "Someone is at the door";
    box.appendChild(title);
    if (message.body) box.appendChild(document.createTextNode(" " + message.body + " "));
    var link = document.createElement("a");
    link.href = message.url || "/";
    link.className = "button primary";
    link.textContent = "Watch live";
    box.appendChild(link);
    var close = document.createElement("button");
    close.type = "button";
    close.className = "small";
    close.textContent = "Dismiss";
    close.addEventListener("click", function () { box.remove(); });
    box.appendChild(close);
  }

  // Push services deliver at least once: a message that comes again (same id) does not
  // ring again. The worker's notification already collapses by its tag.
  var rung = {};

  function onPush(message) {
    if (!message || typeof message !== "object") return;
    if (message.kind === "ring") {
      var id = typeof message.id === "string" ? message.id : "";
      if (id && rung[id]) return;
      if (id) rung[id] = true;
      chime();
      banner(message);
    }
    document.dispatchEvent(new CustomEvent("doorwarden:push", { detail: message }));
  }

  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.addEventListener("message", function (event) {
    // Only our own worker posts here (same origin by construction); check the shape.
    if (event.data && event.data.type === "doorwarden:push") onPush(event.data.payload);
  });
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).then(
    function () { root.dataset.serviceWorker = "registered"; },
    function (err) { root.dataset.serviceWorker = "failed"; console.warn("service worker:", err.message); }
  );
})();
