// The public coverage map: the cells of /api/v1/transparency/coverage (GeoJSON) drawn with
// Leaflet, shaded by camera count. Tiles only when the instance names a tile server;
// otherwise a plain background, so the page loads nothing from anywhere else.
(function () {
  "use strict";
  var root = document.getElementById("coverage-map");
  if (!root || !window.L) return;
  var L = window.L;
  var statusLine = document.getElementById("coverage-status");
  // Light to dark (ColorBrewer YlOrRd): the darker, the more cameras.
  var COLOURS = ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"];

  function say(text) {
    statusLine.textContent = text;
  }

  // Classes double from k (the smallest count a shown cell can have): k, 2k, 4k, ...
  function classes(k) {
    return COLOURS.map(function (_, i) { return k * Math.pow(2, i); });
  }

  function colourOf(count, bounds) {
    for (var i = bounds.length - 1; i >= 0; i--) {
      if (count >= bounds[i]) return COLOURS[i];
    }
    return COLOURS[0];
  }

  function plural(n, one, many) {
    return n + " " + (n === 1 ? one : many);
  }

  function popup(feature) {
    var box = document.createElement("div");
    var count = document.createElement("strong");
    count.textContent = plural(feature.properties.cameras, "camera", "cameras");
    var cell = document.createElement("div");
    cell.className = "coverage-cell-id";
    cell.textContent = "H3 cell " + feature.properties.cell;
    box.appendChild(count);
    box.appendChild(cell);
    return box;
  }

  function legend(bounds) {
    var control = L.control({ position: "bottomright" });
    control.onAdd = function () {
      var box = L.DomUtil.create("div", "coverage-legend");
      var title = L.DomUtil.create("div", "coverage-legend-title", box);
      title.textContent = "Cameras per cell";
      bounds.forEach(function (low, i) {
        var row = L.DomUtil.create("div", "coverage-legend-row", box);
        var swatch = L.DomUtil.create("span", "coverage-swatch", row);
        swatch.style.backgroundColor = COLOURS[i]; // CSSOM: allowed by style-src 'self'
        var label = L.DomUtil.create("span", "", row);
        label.textContent = i + 1 < bounds.length ? low + "–" + (bounds[i + 1] - 1) : low + "+";
      });
      return box;
    };
    return control;
  }

  function draw(data) {
    var map = L.map(root, { worldCopyJump: true, zoomControl: true });
    if (root.dataset.tiles) {
      L.tileLayer(root.dataset.tiles, {
        maxZoom: 19,
        // Leaflet inserts attribution as HTML; the setting is plain text.
        attribution: escapeText(root.dataset.attribution || ""),
        // The site sends no Referer; tile servers (OpenStreetMap's among them) ask for
        // one, so tiles carry this instance's origin, never the page's path.
        referrerPolicy: "strict-origin",
      }).addTo(map);
    } else {
      root.classList.add("coverage-plain");
    }
    var bounds = classes(data.min_cameras);
    var cells = L.geoJSON(data, {
      style: function (feature) {
        return {
          color: "#3d3d3d",
          weight: 1,
          fillColor: colourOf(feature.properties.cameras, bounds),
          fillOpacity: 0.7,
        };
      },
      onEachFeature: function (feature, layer) {
        layer.bindPopup(popup(feature));
      },
    }).addTo(map);
    legend(bounds).addTo(map);
    if (data.features.length) {
      map.fitBounds(cells.getBounds(), { padding: [24, 24], maxZoom: 13 });
      say(plural(data.features.length, "cell", "cells") + " shown.");
    } else {
      map.setView([20, 0], 2);
      say("No cell has enough cameras to be shown yet.");
    }
    root.dataset.state = "ready"; // for people and tests alike: the map is drawn
  }

  function escapeText(text) {
    var span = document.createElement("span");
    span.textContent = text;
    return span.innerHTML;
  }

  fetch(root.dataset.src, { headers: { Accept: "application/json" }, credentials: "same-origin" })
    .then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    })
    .then(draw)
    .catch(function () {
      root.dataset.state = "failed";
      say("The map could not be loaded; the figures are in the tables below.");
    });
})();
