// Two-way talk from the live page (docs/talk.md). A toggle, not hold-to-talk: one press
// starts ("Talking… / Stop"), one press ends; on a phone a held press fights scrolling
// and the long-press menu.
//
// The microphone (echo cancellation and noise suppression on, so the camera's own sound
// from this device's speaker is not sent back) is encoded to Opus in the browser:
// WebCodecs AudioEncoder (48 kHz mono, 20 ms packets, one packet per message) where it
// exists, else MediaRecorder's audio/webm;codecs=opus in 100 ms chunks. The audio goes
// over the live page's own WebSocket (live.js publishes it as root.liveSocket), and the
// server relays it to the camera; nothing is stored.
(function () {
  "use strict";

  var root = document.getElementById("live");
  var box = document.getElementById("talk");
  var button = document.getElementById("talk-button");
  var statusLine = document.getElementById("talk-status");
  if (!root || !box || !button || !statusLine) return;

  var MAX_BUFFERED = 64 * 1024; // the uplink is behind: drop audio rather than queue it
  var SAMPLE_RATE = 48000;
  var FRAME_US = 20000;

  var state = "idle";
  var socket = null; // the socket this talk runs on
  var stream = null; // the microphone
  var capture = null; // {start(), stop()}: the encoder feeding the socket
  var codec = null;
  var audioContext = null; // made in the click itself: Safari starts audio only there

  var WORDS = {
    requesting: "Asking for the microphone…",
    denied: "The microphone is blocked for this site. Allow it in the browser's site settings, then press Talk again.",
    connecting: "Connecting to the camera's speaker…",
    talking: "Talking… press Stop to end.",
    busy: "Someone else is talking through this camera right now.",
    failed: "Talk failed.",
    ended: "Talk ended.",
  };

  function show(next, message) {
    state = next;
    box.dataset.state = next;
    statusLine.textContent = message || WORDS[next] || "";
    var active = next === "requesting" || next === "connecting" || next === "talking";
    button.textContent = active ? "Stop" : "Talk";
    button.setAttribute("aria-pressed", active ? "true" : "false");
  }

  function active() {
    return state === "requesting" || state === "connecting" || state === "talking";
  }

  function send(data) {
    if (socket && socket.readyState === WebSocket.OPEN && socket.bufferedAmount < MAX_BUFFERED) {
      socket.send(data);
    }
  }

  function release() {
    if (capture) capture.stop();
    capture = null;
    if (audioContext) audioContext.close();
    audioContext = null;
    if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
    stream = null;
    if (socket) {
      socket.removeEventListener("message", onMessage);
      socket.removeEventListener("close", onClose);
    }
    socket = null;
  }

  function finish(next, message) {
    release();
    show(next, message);
  }

  function onMessage(event) {
    if (typeof event.data !== "string") return;
    var message;
    try { message = JSON.parse(event.data); } catch (err) { return; }
    if (message.type !== "talk" || !active()) return;
    if (message.state === "connecting") {
      if (capture) return;
      capture = codec === "opus" ? webCodecsCapture(stream, audioContext) : recorderCapture(stream);
      try {
        capture.start();
      } catch (err) {
        stopTalk();
        finish("failed", "This browser could not encode the microphone: " + err.message);
      }
    } else if (message.state === "open") {
      show("talking");
    } else if (message.state === "busy" || message.state === "failed" || message.state === "ended") {
      finish(message.state, message.message);
    }
  }

  function onClose() {
    finish("ended", "The connection to the camera dropped. Press Talk to try again.");
  }

  // WebCodecs: PCM from the microphone through an AudioContext at 48 kHz, into Opus.
  // ScriptProcessorNode is old but everywhere, and needs no extra worklet file.
  function webCodecsCapture(input, context) {
    var source = null;
    var node = null;
    var encoder = null;
    var timestamp = 0;
    return {
      start: function () {
        encoder = new AudioEncoder({
          output: function (chunk) {
            var packet = new Uint8Array(chunk.byteLength);
            chunk.copyTo(packet);
            send(packet.buffer);
          },
          error: function (err) { finish("failed", "The audio encoder stopped: " + err.message); },
        });
        encoder.configure({
          codec: "opus", sampleRate: context.sampleRate, numberOfChannels: 1, bitrate: 32000,
          opus: { frameDuration: FRAME_US },
        });
        source = context.createMediaStreamSource(input);
        node = context.createScriptProcessor(1024, 1, 1);
        node.onaudioprocess = function (event) {
          if (!encoder || encoder.state !== "configured") return;
          var samples = new Float32Array(event.inputBuffer.getChannelData(0));
          var data = new AudioData({
            format: "f32-planar", sampleRate: context.sampleRate, numberOfFrames: samples.length,
            numberOfChannels: 1, timestamp: timestamp, data: samples,
          });
          timestamp += Math.round((samples.length * 1e6) / context.sampleRate);
          encoder.encode(data);
          data.close();
        };
        source.connect(node);
        node.connect(context.destination); // silent: the output buffer is never written
        context.resume();
      },
      stop: function () {
        if (node) { node.onaudioprocess = null; node.disconnect(); }
        if (source) source.disconnect();
        if (encoder && encoder.state !== "closed") encoder.close();
        encoder = null;
      },
    };
  }

  // MediaRecorder: one WebM stream, sent in 100 ms chunks, in order.
  function recorderCapture(input) {
    var recorder = new MediaRecorder(input, {
      mimeType: "audio/webm;codecs=opus", audioBitsPerSecond: 32000,
    });
    var chain = Promise.resolve();
    recorder.ondataavailable = function (event) {
      if (!event.data || !event.data.size) return;
      var blob = event.data;
      chain = chain.then(function () { return blob.arrayBuffer(); }).then(send);
    };
    return {
      start: function () { recorder.start(100); },
      stop: function () { if (recorder.state !== "inactive") recorder.stop(); },
    };
  }

  function pickCodec() {
    if (window.AudioEncoder && window.AudioData && window.AudioContext) return "opus";
    if (window.MediaRecorder && MediaRecorder.isTypeSupported("audio/webm;codecs=opus")) return "webm";
    return null;
  }

  function startTalk() {
    codec = pickCodec();
    if (!codec) {
      show("failed", "This browser cannot send audio (no Opus encoder).");
      return;
    }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      show("failed", "This browser cannot use a microphone here (it needs https).");
      return;
    }
    if (codec === "opus") audioContext = new AudioContext({ sampleRate: SAMPLE_RATE });
    show("requesting");
    navigator.mediaDevices
      .getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, channelCount: 1 } })
      .then(function (microphone) {
        if (state !== "requesting") { // stopped while the browser asked
          microphone.getTracks().forEach(function (track) { track.stop(); });
          return;
        }
        stream = microphone;
        socket = root.liveSocket;
        if (!socket || socket.readyState !== WebSocket.OPEN) {
          finish("failed", "Not connected to the camera yet. Try again in a moment.");
          return;
        }
        socket.addEventListener("message", onMessage);
        socket.addEventListener("close", onClose);
        show("connecting");
        socket.send(JSON.stringify({ type: "talk", action: "start", codec: codec }));
      })
      .catch(function (err) {
        if (state !== "requesting") return;
        if (err.name === "NotAllowedError" || err.name === "SecurityError") finish("denied");
        else if (err.name === "NotFoundError") finish("failed", "No microphone was found on this device.");
        else finish("failed", "The microphone could not be opened: " + err.message);
      });
  }

  function stopTalk() {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "talk", action: "stop" }));
    }
  }

  button.addEventListener("click", function () {
    if (active()) {
      stopTalk();
      finish("ended", "You stopped talking.");
    } else {
      startTalk();
    }
  });
  // A new socket (live.js reconnected) carries no talk: one that was running has ended.
  root.addEventListener("doorwarden:socket", function () {
    if (socket && root.liveSocket !== socket && active()) onClose();
  });
  window.addEventListener("pagehide", function () {
    if (active()) stopTalk();
    release();
  });
})();
