// Drawing an area on a Leaflet map: each click places the next corner of a polygon, and
// the GeoJSON textarea named by data-field is filled in (longitude, latitude, as GeoJSON
// has it). Typing or pasting GeoJSON into the textarea redraws the map. The textarea is
// the form field: without this script, the form works the same by pasting.
// Tiles only when the instance names a tile server (data-tiles); otherwise a plain
// background, and the page asks nothing of any other server.
(function () {
  "use strict";
  var L = window.L;
  if (!L) return;

  function round(value) {
    return Math.round(value * 1e6) / 1e6;
  }

  function parse(text) {
    if (!text || !text.trim()) return null;
    try {
      var value = JSON.parse(text);
      if (value && value.type === "Feature") value = value.geometry;
      return value && (value.type === "Polygon" || value.type === "MultiPolygon") ? value : null;
    } catch (e) {
      return null;
    }
  }

  function setUp(root) {
    var field = document.getElementById(root.dataset.field);
    var statusLine = document.getElementById(root.dataset.status);
    if (!field) return;
    var map = L.map(root, { worldCopyJump: true, doubleClickZoom: false });
    if (root.dataset.tiles) {
      L.tileLayer(root.dataset.tiles, {
        maxZoom: 19,
        attribution: escapeText(root.dataset.attribution || ""),
        referrerPolicy: "strict-origin",
      }).addTo(map);
    } else {
      root.classList.add("area-plain");
    }
    var reference = parse(root.dataset.reference);
    var referenceLayer = null;
    if (reference) {
      referenceLayer = L.geoJSON(reference, {
        interactive: false,
        style: { color: "#1d4e89", weight: 2, dashArray: "6 4", fill: false },
      }).addTo(map);
    }
    var points = []; // [lat, lng], the corners placed, in order
    var drawn = L.layerGroup().addTo(map);

    function say(text) {
      if (statusLine) statusLine.textContent = text;
    }

    function redraw() {
      drawn.clearLayers();
      if (points.length >= 3) {
        L.polygon(points, { color: "#b42318", weight: 2, fillOpacity: 0.15 }).addTo(drawn);
      } else if (points.length === 2) {
        L.polyline(points, { color: "#b42318", weight: 2 }).addTo(drawn);
      }
      points.forEach(function (p) {
        L.circleMarker(p, { radius: 5, color: "#b42318", weight: 2, fillOpacity: 1 }).addTo(drawn);
      });
    }

    function write() {
      if (points.length < 3) {
        field.value = "";
        say(points.length + " of at least 3 corners placed.");
        return;
      }
      var ring = points.map(function (p) { return [round(p[1]), round(p[0])]; });
      ring.push(ring[0]);
      field.value = JSON.stringify({ type: "Polygon", coordinates: [ring] });
      say(points.length + " corners placed: the area is filled in below.");
    }

    function load() {
      var shape = parse(field.value);
      points = [];
      drawn.clearLayers();
      if (!shape) {
        if (field.value.trim()) say("The text below is not a GeoJSON polygon yet.");
        return null;
      }
      if (shape.type === "Polygon") {
        var ring = shape.coordinates[0] || [];
        points = ring.slice(0, ring.length > 1 ? ring.length - 1 : ring.length)
          .map(function (c) { return [c[1], c[0]]; });
        redraw();
      } else {
        L.geoJSON(shape, { style: { color: "#b42318", weight: 2, fillOpacity: 0.15 } }).addTo(drawn);
        say("A multi-part area is shown; clicking the map starts a new single area instead.");
      }
      return drawn;
    }

    map.on("click", function (event) {
      if (points.length === 0 && drawn.getLayers().length) drawn.clearLayers();
      points.push([event.latlng.lat, event.latlng.lng]);
      redraw();
      write();
    });
    field.addEventListener("change", function () {
      load();
      fit();
    });

    var tools = document.getElementById(root.id + "-tools");
    if (tools) {
      tools.hidden = false;
      tools.querySelector("[data-map-undo]").addEventListener("click", function () {
        points.pop();
        redraw();
        write();
      });
      tools.querySelector("[data-map-clear]").addEventListener("click", function () {
        points = [];
        redraw();
        write();
      });
    }

    function fit() {
      var layers = drawn.getLayers();
      if (layers.length) {
        var bounds = L.featureGroup(layers).getBounds();
        if (bounds.isValid()) {
          map.fitBounds(bounds, { padding: [24, 24], maxZoom: 17 });
          return;
        }
      }
      if (referenceLayer && referenceLayer.getBounds().isValid()) {
        map.fitBounds(referenceLayer.getBounds(), { padding: [24, 24] });
      } else {
        map.setView([20, 0], 2);
      }
    }

    load();
    fit();
    root.dataset.state = "ready";
  }

  function escapeText(text) {
    var span = document.createElement("span");
    span.textContent = text;
    return span.innerHTML;
  }

  Array.prototype.forEach.call(document.querySelectorAll(".area-map[data-field]"), setUp);
})();
