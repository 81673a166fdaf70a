// The camera grid: each tile shows its camera's latest snapshot and switches to live in
// place (live.js's player) while the pointer rests on it, or when tapped or its button is
// pressed; one live tile at a time on touch screens, where there is no hover to end it.
(function () {
  "use strict";
  var grid = document.getElementById("camera-grid");
  if (!grid || !window.DoorwardenLive) return;
  var HOVER_DELAY_MS = 250; // a pointer passing over a tile on its way elsewhere starts nothing
  var canHover = window.matchMedia && window.matchMedia("(hover: hover)").matches;

  function setup(tile) {
    var video = tile.querySelector(".tile-video");
    var snapshot = tile.querySelector(".snapshot");
    var button = tile.querySelector(".tile-toggle");
    var player = null;
    var timer = null;
    var pinned = false; // started by a tap or the button: hover does not stop it

    function start() {
      if (player) return;
      grid.querySelectorAll(".camera-tile").forEach(function (other) {
        if (other !== tile && other.stopLive && !other.pinnedLive()) other.stopLive();
      });
      video.hidden = false;
      if (snapshot) snapshot.hidden = true;
      player = window.DoorwardenLive.attach(tile);
      button.setAttribute("aria-pressed", "true");
      button.textContent = "Stop";
    }

    function stop() {
      clearTimeout(timer);
      pinned = false;
      if (!player) return;
      player.stop();
      player = null;
      video.hidden = true;
      if (snapshot) snapshot.hidden = false;
      tile.querySelector(".live-status").textContent = "";
      tile.dataset.state = "snapshot";
      button.setAttribute("aria-pressed", "false");
      button.textContent = "Watch here";
    }

    tile.stopLive = stop;
    tile.pinnedLive = function () { return pinned; };
    button.addEventListener("click", function () {
      if (player && pinned) { stop(); return; }
      if (!canHover) {
        grid.querySelectorAll(".camera-tile").forEach(function (other) {
          if (other !== tile && other.stopLive) other.stopLive();
        });
      }
      pinned = true;
      start();
    });
    tile.querySelector(".camera-frame").addEventListener("click", function () { button.click(); });
    if (canHover) {
      tile.addEventListener("pointerenter", function (event) {
        if (event.pointerType !== "mouse") return;
        clearTimeout(timer);
        timer = setTimeout(start, HOVER_DELAY_MS);
      });
      tile.addEventListener("pointerleave", function (event) {
        if (event.pointerType !== "mouse") return;
        clearTimeout(timer);
        if (!pinned) stop();
      });
    }
  }

  grid.querySelectorAll(".camera-tile").forEach(setup);
})();
