/* Client 360: assets over time with the net cash moved between snapshots
 * (templates/clients/client_detail.html). Draws with the vendored Chart.js from the JSON the
 * page embeds; the words come from the page ("c360-text"). Without JavaScript the table of
 * snapshots next to the chart carries the numbers.
 */
(function () {
  "use strict";

  var figure = document.getElementById("assets-figure");
  var canvas = document.getElementById("assets-chart");
  var source = document.getElementById("assets-data");
  if (!figure || !canvas || !source || typeof window.Chart === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var text = JSON.parse(document.getElementById("c360-text").textContent);
  var locale = document.documentElement.lang || undefined;
  var money = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
  var compact = new Intl.NumberFormat(locale, { notation: "compact", maximumFractionDigits: 1 });
  var Chart = window.Chart;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#4a5666";
  figure.classList.add("is-drawn");

  new Chart(canvas, {
    data: {
      labels: data.dates,
      datasets: [
        {
          type: "line",
          label: text.assets,
          data: data.assets,
          borderColor: "#1a5fb4",
          backgroundColor: "rgba(26, 95, 180, 0.08)",
          fill: true,
          pointRadius: 2,
          tension: 0.2,
          yAxisID: "y",
        },
        {
          type: "bar",
          label: text.flows,
          data: data.flows,
          backgroundColor: data.flows.map(function (v) { return v !== null && v < 0 ? "#d9534f" : "#5cb85c"; }),
          yAxisID: "flows",
        },
      ],
    },
    options: {
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "index", intersect: false },
      scales: {
        x: { ticks: { maxTicksLimit: 8 } },
        y: { position: "left", ticks: { callback: function (v) { return compact.format(v); } } },
        flows: {
          position: "right",
          grid: { drawOnChartArea: false },
          ticks: { callback: function (v) { return compact.format(v); } },
        },
      },
      plugins: {
        legend: { position: "bottom", labels: { boxWidth: 12 } },
        tooltip: {
          callbacks: {
            label: function (item) {
              return item.dataset.label + ": " + (item.raw === null ? "—" : money.format(item.raw));
            },
          },
        },
      },
    },
  });
})();
