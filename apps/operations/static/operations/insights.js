// Draws the insights page's charts with uPlot (vendored in static/vendor/uplot) from the
// JSON the page carries; the tables beside them need no script.
(function () {
  "use strict";
  var palette = ["#1d4ed8", "#b45309", "#15803d", "#7c3aed", "#be123c", "#0e7490"];

  function data(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function width(element) {
    return Math.max(300, element.clientWidth || 500);
  }

  function days(series) {
    return series.days.map(function (day) { return Date.parse(day + "T00:00:00Z") / 1000; });
  }

  function plot(element, options, columns) {
    options.width = width(element);
    options.height = 240;
    element.setAttribute("data-drawn", "true");
    return new uPlot(options, columns, element);
  }

  function percentAxis() {
    return { values: function (u, ticks) { return ticks.map(function (t) { return Math.round(t * 100) + "%"; }); } };
  }

  function draw() {
    var series = data("insights-series");
    var reliability = data("insights-reliability");
    var budget = data("insights-budget");
    if (!series || typeof uPlot === "undefined") { return; }
    var x = days(series);

    var messages = document.querySelector('[data-chart="messages"]');
    var channels = Object.keys(series.channels);
    if (messages) {
      plot(messages, {
        series: [{}].concat(channels.map(function (channel, i) {
          return { label: channel, stroke: palette[i % palette.length], width: 2 };
        })),
        scales: { y: { range: function (u, min, max) { return [0, Math.max(1, max)]; } } },
      }, [x].concat(channels.map(function (channel) { return series.channels[channel]; })));
    }

    var quality = document.querySelector('[data-chart="quality"]');
    if (quality) {
      plot(quality, {
        series: [{}, { label: "auto-send rate", stroke: palette[0], width: 2 },
                 { label: "precision", stroke: palette[2], width: 2 }],
        scales: { y: { range: [0, 1] } },
        axes: [{}, percentAxis()],
      }, [x, series.auto_send_rate, series.precision]);
    }

    var cost = document.querySelector('[data-chart="cost"]');
    if (cost) {
      var columns = [x, series.cost];
      var lines = [{}, { label: "cost (USD)", stroke: palette[1], width: 2, fill: "rgba(180,83,9,0.12)" }];
      if (budget) {
        columns.push(x.map(function () { return budget; }));
        lines.push({ label: "daily budget", stroke: palette[4], dash: [6, 4], width: 1.5 });
      }
      plot(cost, { series: lines, scales: { y: { range: function (u, min, max) { return [0, Math.max(0.01, max)]; } } } }, columns);
    }

    var calibration = document.querySelector('[data-chart="reliability"]');
    if (calibration && reliability) {
      var points = reliability.filter(function (row) { return row.judged > 0; });
      plot(calibration, {
        mode: 1,
        scales: { x: { time: false, range: [0, 1] }, y: { range: [0, 1] } },
        axes: [percentAxis(), percentAxis()],
        series: [{ label: "predicted" },
                 { label: "observed", stroke: palette[0], width: 2, points: { size: 8 } },
                 { label: "perfect", stroke: "#9ca3af", dash: [4, 4], width: 1 }],
      }, [points.map(function (row) { return row.predicted; }),
          points.map(function (row) { return row.observed; }),
          points.map(function (row) { return row.predicted; })]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
