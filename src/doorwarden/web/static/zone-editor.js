// The zone editor of a camera's settings page (static/zones.js attaches it; docs/
// camera-settings.md, "On the web page"): polygons of three layers (privacy zones, motion
// zones, ignore areas) drawn over a snapshot in a canvas. Points are added by clicking (or
// with the keyboard's cross), a polygon is closed on its first corner or with Finish,
// corners are dragged, a polygon is selected and deleted; each layer is also listed under
// the canvas with Select and Delete buttons, so nothing needs a pointer.
//
// The editor owns no values: it reads a layer's polygons from the page (`polygons`), asks
// for a list it may change when an edit starts (`editable`: the page's override, made from
// the camera's file on the first edit) and tells the page after each edit (`changed`).
// Coordinates are normalised (0..1 from the top-left) as the agent keeps them.
(function () {
  "use strict";

  var LAYERS = ["privacy_zones", "motion.zones", "motion.ignore"];
  var STYLE = {
    "privacy_zones": { fill: "rgba(0, 0, 0, 0.72)", line: "#e03131", label: "Privacy zone" },
    "motion.zones": { fill: "rgba(47, 158, 68, 0.28)", line: "#2f9e44", label: "Motion zone" },
    "motion.ignore": { fill: "rgba(240, 140, 0, 0.30)", line: "#f08c00", label: "Ignore area" },
  };
  var MAX_POLYGONS = 16; // formats/camera_settings.py's limits
  var MAX_POINTS = 64;
  var SNAP = 0.015; // a point this close to an edge goes onto it: zones usually reach it
  var HIT_PX = 10; // how near a corner a click must be to grab it

  // options: polygons(layer) -> [[x, y], ...][], editable(layer) -> the same, changeable;
  // changed(layer); listOf(layer) -> the <ul> listing that layer's polygons.
  function attach(root, options) {
    var canvas = root.querySelector("#zones-canvas");
    var ctx = canvas.getContext("2d");
    var announceLine = root.querySelector("#zones-announce");
    var finishButton = root.querySelector("#finish-polygon");
    var cancelButton = root.querySelector("#cancel-polygon");
    var deleteButton = root.querySelector("#delete-polygon");
    var polygons = options.polygons;
    var editable = options.editable;

    var image = null; // the snapshot, an ImageBitmap
    var active = LAYERS[0];
    var draft = null; // corners of the polygon being drawn
    var selected = null; // {layer, index, vertex (or -1)}
    var drag = null;
    var cursor = [0.5, 0.5]; // the keyboard's cross, and the pointer's position
    var showCursor = false;
    var invalid = null; // {field: layer, polygon: index} named by the API's last refusal

    function size() { return { w: canvas.clientWidth || canvas.width, h: canvas.clientHeight || canvas.height }; }

    function resize() {
      var ratio = window.devicePixelRatio || 1;
      var width = canvas.parentElement.clientWidth || 640;
      var aspect = image ? image.width / image.height : 16 / 9;
      canvas.style.width = width + "px";
      canvas.style.height = Math.round(width / aspect) + "px";
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round((width / aspect) * ratio);
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      draw();
    }

    function toPx(point) { var s = size(); return [point[0] * s.w, point[1] * s.h]; }

    function snap(v) {
      v = Math.min(1, Math.max(0, v));
      if (v < SNAP) v = 0;
      if (v > 1 - SNAP) v = 1;
      return Math.round(v * 10000) / 10000;
    }

    function fromEvent(event) {
      var rect = canvas.getBoundingClientRect();
      return [snap((event.clientX - rect.left) / rect.width), snap((event.clientY - rect.top) / rect.height)];
    }

    function path(points) {
      ctx.beginPath();
      points.forEach(function (p, i) { var q = toPx(p); if (i) ctx.lineTo(q[0], q[1]); else ctx.moveTo(q[0], q[1]); });
    }

    function handle(point, radius, fill) {
      var q = toPx(point);
      ctx.beginPath();
      ctx.arc(q[0], q[1], radius, 0, 2 * Math.PI);
      ctx.fillStyle = fill;
      ctx.fill();
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = "#fff";
      ctx.stroke();
    }

    function draw() {
      var s = size();
      ctx.clearRect(0, 0, s.w, s.h);
      if (image) {
        ctx.drawImage(image, 0, 0, s.w, s.h);
      } else {
        ctx.fillStyle = "#d9dde3";
        ctx.fillRect(0, 0, s.w, s.h);
        ctx.fillStyle = "#495057";
        ctx.font = Math.round(Math.max(11, Math.min(16, s.w / 28))) + "px system-ui, sans-serif";
        ctx.textAlign = "center";
        ctx.fillText("Take a snapshot to see what the camera sees", s.w / 2, s.h / 2, s.w - 16);
      }
      // The layer being edited last, on top.
      LAYERS.filter(function (l) { return l !== active; }).concat([active]).forEach(function (layer) {
        var style = STYLE[layer];
        polygons(layer).forEach(function (points, index) {
          var isSelected = selected && selected.layer === layer && selected.index === index;
          var isInvalid = invalid && invalid.field === layer && invalid.polygon === index;
          ctx.globalAlpha = layer === active ? 1 : 0.55;
          path(points);
          ctx.closePath();
          ctx.fillStyle = style.fill;
          ctx.fill();
          ctx.setLineDash(isInvalid ? [6, 4] : []);
          ctx.lineWidth = isSelected || isInvalid ? 3 : 2;
          ctx.strokeStyle = isInvalid ? "#c92a2a" : style.line;
          ctx.stroke();
          ctx.setLineDash([]);
          ctx.globalAlpha = 1;
          if (layer === active) {
            points.forEach(function (p, v) {
              var on = isSelected && selected.vertex === v;
              handle(p, on ? 6 : 4, on ? "#1c7ed6" : style.line);
            });
          }
        });
      });
      if (draft) {
        var style = STYLE[active];
        path(showCursor || draft.length ? draft.concat([cursor]) : draft);
        ctx.lineWidth = 2;
        ctx.strokeStyle = style.line;
        ctx.setLineDash([5, 3]);
        ctx.stroke();
        ctx.setLineDash([]);
        draft.forEach(function (p, i) { handle(p, i === 0 ? 7 : 4, i === 0 ? "#1c7ed6" : style.line); });
      }
      if (showCursor) {
        var c = toPx(cursor);
        ctx.strokeStyle = "#1c7ed6";
        ctx.lineWidth = 1.5;
        ctx.beginPath();
        ctx.moveTo(c[0] - 10, c[1]); ctx.lineTo(c[0] + 10, c[1]);
        ctx.moveTo(c[0], c[1] - 10); ctx.lineTo(c[0], c[1] + 10);
        ctx.stroke();
      }
      finishButton.disabled = !draft || draft.length < 3;
      cancelButton.disabled = !draft;
      deleteButton.disabled = !selected;
      root.dataset.drawing = draft ? String(draft.length) : "";
    }

    function near(a, b) {
      var p = toPx(a), q = toPx(b);
      return Math.abs(p[0] - q[0]) <= HIT_PX && Math.abs(p[1] - q[1]) <= HIT_PX;
    }

    function inside(point, points) {
      var x = point[0], y = point[1], hit = false;
      for (var i = 0, j = points.length - 1; i < points.length; j = i++) {
        var xi = points[i][0], yi = points[i][1], xj = points[j][0], yj = points[j][1];
        if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) hit = !hit;
      }
      return hit;
    }

    function say(text) { announceLine.textContent = text; }

    function select(choice) {
      selected = choice;
      renderLists();
      draw();
    }

    function changed(layer) {
      options.changed(layer);
      renderLists();
      draw();
    }

    function addPoint(point) {
      if (!draft) {
        if (polygons(active).length >= MAX_POLYGONS) {
          say("This layer already has " + MAX_POLYGONS + " polygons, the most a camera takes.");
          return;
        }
        draft = [];
        select(null);
      }
      if (draft.length >= 3 && near(point, draft[0])) { finishDraft(); return; }
      draft.push(point);
      say("Corner " + draft.length + " at " + Math.round(point[0] * 100) + "% across, " + Math.round(point[1] * 100) + "% down." + (draft.length >= 3 ? " Click the first corner or Finish polygon to close it." : ""));
      if (draft.length >= MAX_POINTS) finishDraft();
      else draw();
    }

    function finishDraft() {
      if (!draft) return;
      if (draft.length < 3) { say("A polygon needs at least 3 corners."); return; }
      var list = editable(active);
      list.push(draft);
      draft = null;
      say(STYLE[active].label + " " + list.length + " added with " + list[list.length - 1].length + " corners. Save to send it to the camera.");
      selected = { layer: active, index: list.length - 1, vertex: -1 };
      changed(active);
    }

    function deleteSelected() {
      if (!selected) return;
      var layer = selected.layer;
      editable(layer).splice(selected.index, 1);
      say(STYLE[layer].label + " " + (selected.index + 1) + " deleted. Save to send the change to the camera.");
      selected = null;
      changed(layer);
    }

    finishButton.addEventListener("click", finishDraft);
    cancelButton.addEventListener("click", function () { draft = null; say("Polygon cancelled."); draw(); });
    deleteButton.addEventListener("click", deleteSelected);

    function chooseLayer(layer) {
      active = layer;
      draft = null;
      if (selected && selected.layer !== layer) selected = null;
      var radio = root.querySelector('input[name="zone-layer"][value="' + layer + '"]');
      if (radio) radio.checked = true;
      canvas.dataset.layer = layer;
      draw();
    }
    root.querySelectorAll('input[name="zone-layer"]').forEach(function (radio) {
      radio.addEventListener("change", function () { if (radio.checked) chooseLayer(radio.value); });
    });

    canvas.addEventListener("pointerdown", function (event) {
      if (event.button !== 0) return;
      event.preventDefault();
      canvas.focus({ preventScroll: true });
      showCursor = false;
      var point = fromEvent(event);
      cursor = point;
      if (draft) { addPoint(point); return; }
      var list = polygons(active);
      for (var i = list.length - 1; i >= 0; i--) {
        for (var v = 0; v < list[i].length; v++) {
          if (near(point, list[i][v])) {
            select({ layer: active, index: i, vertex: v });
            drag = { layer: active, index: i, vertex: v, moved: false };
            canvas.setPointerCapture(event.pointerId);
            return;
          }
        }
      }
      for (var j = list.length - 1; j >= 0; j--) {
        if (inside(point, list[j])) {
          select({ layer: active, index: j, vertex: -1 });
          say(STYLE[active].label + " " + (j + 1) + " selected.");
          return;
        }
      }
      addPoint(point);
    });

    canvas.addEventListener("pointermove", function (event) {
      var point = fromEvent(event);
      cursor = point;
      if (drag) {
        editable(drag.layer)[drag.index][drag.vertex] = point;
        drag.moved = true;
        options.changed(drag.layer);
        draw();
      } else if (draft) {
        draw();
      }
    });

    function endDrag() {
      if (!drag) return;
      if (drag.moved) { say("Corner moved. Save to send the change to the camera."); changed(drag.layer); }
      drag = null;
    }
    canvas.addEventListener("pointerup", endDrag);
    canvas.addEventListener("pointercancel", endDrag);

    canvas.addEventListener("focus", function () { if (!drag) { showCursor = true; draw(); } });
    canvas.addEventListener("blur", function () { showCursor = false; draw(); });

    canvas.addEventListener("keydown", function (event) {
      var step = event.shiftKey ? 0.05 : 0.01;
      var moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
      var key = event.key;
      if (moves[key]) {
        var d = moves[key];
        if (selected && selected.vertex >= 0 && !draft) {
          var points = editable(selected.layer)[selected.index];
          var p = points[selected.vertex];
          points[selected.vertex] = [snap(p[0] + d[0]), snap(p[1] + d[1])];
          var q = points[selected.vertex];
          say("Corner moved to " + Math.round(q[0] * 100) + "% across, " + Math.round(q[1] * 100) + "% down.");
          changed(selected.layer);
        } else {
          cursor = [snap(cursor[0] + d[0]), snap(cursor[1] + d[1])];
          showCursor = true;
          draw();
        }
      } else if (key === "Enter" || key === " ") {
        addPoint(cursor.slice());
      } else if (key === "Escape") {
        if (draft) { draft = null; say("Polygon cancelled."); draw(); }
        else select(null);
      } else if (key === "Delete" || key === "Backspace") {
        if (draft) { draft.pop(); if (!draft.length) draft = null; draw(); }
        else deleteSelected();
      } else if ((key === "n" || key === "N") && selected) {
        var count = polygons(selected.layer)[selected.index].length;
        selected.vertex = (selected.vertex + 1) % count;
        cursor = polygons(selected.layer)[selected.index][selected.vertex].slice();
        say("Corner " + (selected.vertex + 1) + " of " + count + " selected: arrow keys move it.");
        draw();
      } else if (key === "s" || key === "S") {
        var list = polygons(active);
        if (!list.length) { say("No polygons in this layer yet."); return; }
        var next = selected && selected.layer === active ? (selected.index + 1) % list.length : 0;
        select({ layer: active, index: next, vertex: -1 });
        say(STYLE[active].label + " " + (next + 1) + " of " + list.length + " selected.");
      } else {
        return;
      }
      event.preventDefault();
    });

    // The polygons of each layer as a list: reachable without the canvas, one per row.

    function renderLists() {
      LAYERS.forEach(function (layer) {
        var list = options.listOf(layer);
        if (!list) return;
        list.textContent = "";
        var items = polygons(layer);
        if (!items.length) {
          var none = document.createElement("li");
          none.className = "muted";
          none.textContent = layer === "motion.zones" ? "None: motion counts anywhere in the image." : "None.";
          list.appendChild(none);
        }
        items.forEach(function (points, index) {
          var li = document.createElement("li");
          li.className = "polygon";
          li.dataset.index = String(index);
          if (selected && selected.layer === layer && selected.index === index) li.classList.add("selected");
          if (invalid && invalid.field === layer && invalid.polygon === index) li.classList.add("invalid");
          var text = document.createElement("span");
          text.textContent = STYLE[layer].label + " " + (index + 1) + " · " + points.length + " corners";
          li.appendChild(text);
          var pick = document.createElement("button");
          pick.type = "button";
          pick.className = "small";
          pick.textContent = "Select";
          pick.setAttribute("aria-label", "Select " + STYLE[layer].label.toLowerCase() + " " + (index + 1));
          pick.addEventListener("click", function () { chooseLayer(layer); select({ layer: layer, index: index, vertex: 0 }); canvas.focus(); say(STYLE[layer].label + " " + (index + 1) + " selected, corner 1: arrow keys move it, N the next corner."); });
          var remove = document.createElement("button");
          remove.type = "button";
          remove.className = "small danger";
          remove.textContent = "Delete";
          remove.setAttribute("aria-label", "Delete " + STYLE[layer].label.toLowerCase() + " " + (index + 1));
          remove.addEventListener("click", function () { selected = { layer: layer, index: index, vertex: -1 }; deleteSelected(); });
          li.appendChild(document.createTextNode(" "));
          li.appendChild(pick);
          li.appendChild(document.createTextNode(" "));
          li.appendChild(remove);
          list.appendChild(li);
        });
      });
    }

    if (window.ResizeObserver) new ResizeObserver(function () { resize(); }).observe(canvas.parentElement);
    chooseLayer(active);
    resize();

    return {
      setImage: function (bitmap) {
        if (image && image.close) image.close();
        image = bitmap;
        resize();
      },
      chooseLayer: chooseLayer,
      select: select,
      say: say,
      finishDraft: finishDraft,
      cancelDraft: function () { draft = null; draw(); },
      refresh: function () { renderLists(); draw(); },
      // A layer reset to the file: nothing of it stays selected.
      forget: function (layer) {
        if (selected && selected.layer === layer) selected = null;
        renderLists();
        draw();
      },
      // The API refused polygon `index` of `layer` (-1: the layer as a whole): show it.
      markInvalid: function (layer, index) {
        invalid = { field: layer, polygon: index };
        chooseLayer(layer);
        if (index >= 0 && index < polygons(layer).length) selected = { layer: layer, index: index, vertex: -1 };
        renderLists();
        draw();
      },
      clearInvalid: function (layer) {
        if (!invalid || invalid.field !== layer) return;
        invalid = null;
        renderLists();
        draw();
      },
    };
  }

  window.DoorwardenZoneEditor = { attach: attach, LAYERS: LAYERS };
})();
