/* Management dashboard charts (templates/dashboards/management.html).
 *
 * Draws with the vendored Chart.js (static/vendor/chartjs) from the JSON the page embeds with
 * json_script: the same numbers as the tables next to each chart. Every word comes from the
 * page ("chart-text"), so this file has no strings of its own. Without JavaScript (or without
 * Chart.js) the charts stay hidden and the tables carry the numbers.
 */
(function () {
  "use strict";

  var root = document.getElementById("dashboard");
  if (!root || typeof window.Chart === "undefined") {
    return;
  }
  var Chart = window.Chart;
  var locale = document.documentElement.lang || undefined;
  var number = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });
  var TIER_COLOURS = ["#0f2a47", "#1a5fb4", "#6c9bd8", "#b7cde9"];
  var LINE = "#1a5fb4";
  var ACCENT = "#b42318";

  function data(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  var text = data("chart-text") || {};
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#4a5666";
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.animation = false;
  root.classList.add("has-charts");

  function percentAxis(title, max) {
    return {
      type: "linear",
      min: 0,
      max: max,
      title: { display: !!title, text: title },
      ticks: { callback: function (value) { return number.format(value) + "%"; } },
    };
  }

  function pareto() {
    var pareto = data("pareto-data");
    var canvas = document.getElementById("pareto-chart");
    if (!pareto || !canvas) {
      return;
    }
    // One filled rectangle per tier: x from its first to its last client (cumulative share),
    // y its share of commission. The line is the cumulative commission through the tier edges.
    var datasets = pareto.steps.map(function (step, index) {
      return {
        type: "line",
        label: step.label,
        data: [
          { x: step.start, y: step.commission_share },
          { x: step.cumulative_client_share, y: step.commission_share },
        ],
        borderColor: TIER_COLOURS[index % TIER_COLOURS.length],
        backgroundColor: TIER_COLOURS[index % TIER_COLOURS.length],
        fill: "origin",
        pointRadius: 0,
        borderWidth: 1,
      };
    });
    var curve = [{ x: 0, y: 0 }].concat(
      pareto.steps.map(function (step) {
        return { x: step.cumulative_client_share, y: step.cumulative_commission_share };
      })
    );
    datasets.push({
      type: "line",
      label: text.cumulative,
      data: curve,
      borderColor: "#8a5a00",
      backgroundColor: "#8a5a00",
      fill: false,
      pointRadius: 2,
      borderDash: [4, 3],
    });
    if (pareto.top20_share !== null) {
      datasets.push({
        type: "scatter",
        label: text.top20 + ": " + number.format(pareto.top20_share) + "%",
        data: [{ x: 20, y: pareto.top20_share }],
        borderColor: ACCENT,
        backgroundColor: ACCENT,
        pointRadius: 5,
        pointStyle: "rectRot",
      });
    }
    new Chart(canvas, {
      type: "line",
      data: { datasets: datasets },
      options: {
        parsing: false,
        scales: { x: percentAxis(text.clients_share, 100), y: percentAxis(text.commission_share, 100) },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: {
            callbacks: {
              label: function (item) {
                return item.dataset.label + ": " + number.format(item.parsed.y) + "%";
              },
            },
          },
        },
      },
    });
  }

  function tiers() {
    var tiers = data("tiers-data");
    var canvas = document.getElementById("tiers-chart");
    if (!tiers || !canvas) {
      return;
    }
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: tiers.dates,
        datasets: tiers.tiers.map(function (tier, index) {
          return {
            label: tier.label,
            data: tiers.counts.map(function (counts) { return counts[index]; }),
            backgroundColor: TIER_COLOURS[index % TIER_COLOURS.length],
          };
        }),
      },
      options: {
        scales: {
          x: { stacked: true, ticks: { maxRotation: 0, autoSkip: true } },
          y: { stacked: true, beginAtZero: true, title: { display: true, text: text.clients } },
        },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
      },
    });
  }

  function kpis() {
    var kpi = data("kpi-data");
    if (!kpi) {
      return;
    }
    kpi.series.forEach(function (series) {
      var canvas = document.getElementById("kpi-chart-" + series.code);
      if (!canvas) {
        return;
      }
      new Chart(canvas, {
        type: "line",
        data: {
          labels: kpi.dates,
          datasets: [
            {
              label: series.label,
              data: series.points,
              borderColor: LINE,
              backgroundColor: "rgba(26, 95, 180, 0.12)",
              fill: "origin",
              pointRadius: kpi.dates.length > 1 ? 0 : 3,
              borderWidth: 2,
              spanGaps: true,
              tension: 0.2,
            },
          ],
        },
        options: {
          scales: {
            x: { display: false },
            y: { ticks: { maxTicksLimit: 3, callback: function (value) { return number.format(value) + series.unit; } } },
          },
          plugins: {
            legend: { display: false },
            tooltip: {
              callbacks: {
                label: function (item) {
                  return item.parsed.y === null ? "—" : number.format(item.parsed.y) + series.unit;
                },
              },
            },
          },
        },
      });
    });
  }

  function campaigns() {
    var campaign = data("campaign-data");
    var canvas = document.getElementById("campaign-chart");
    if (!campaign || !canvas) {
      return;
    }
    // A forest plot: the interval as a floating bar, the uplift as a point, zero as the axis.
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: campaign.names,
        datasets: [
          {
            type: "bar",
            label: text.interval,
            data: campaign.ci,
            backgroundColor: "rgba(26, 95, 180, 0.25)",
            borderColor: LINE,
            borderWidth: 1,
            barPercentage: 0.4,
          },
          {
            type: "scatter",
            label: text.uplift,
            data: campaign.uplift.map(function (value, index) { return { x: value, y: campaign.names[index] }; }),
            backgroundColor: ACCENT,
            borderColor: ACCENT,
            pointRadius: 4,
          },
        ],
      },
      options: {
        indexAxis: "y",
        scales: {
          x: { title: { display: true, text: text.uplift }, grid: { color: function (ctx) { return ctx.tick && ctx.tick.value === 0 ? "#17202c" : "#eef1f5"; } } },
          y: { type: "category" },
        },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
      },
    });
  }

  [pareto, tiers, kpis, campaigns].forEach(function (draw) {
    try {
      draw();
    } catch (error) {
      // One chart failing must not hide the others; its table still has the numbers.
      if (window.console) {
        window.console.error(error);
      }
    }
  });
})();
