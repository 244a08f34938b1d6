// The dashboard: numbers from /console/api/dashboard/ (aggregate queries), drawn with the vendored Chart.js.
(function () {
  "use strict";
  const api = document.currentScript.dataset.api;
  const charts = {};
  const REASONS = {
    anomaly: "Order anomaly", asked_for_person: "Asked for a person",
    low_confidence: "Low confidence", negative_feedback: "Negative feedback",
  };

  function percent(value) { return value == null ? "–" : Math.round(value * 100) + "%"; }

  function duration(seconds) {
    if (seconds == null) return "–";
    if (seconds < 90) return Math.round(seconds) + " s";
    if (seconds < 5400) return Math.round(seconds / 60) + " min";
    return (seconds / 3600).toFixed(1) + " h";
  }

  function draw(id, config) {
    if (charts[id]) charts[id].destroy();
    config.options = Object.assign({responsive: true, maintainAspectRatio: false, animation: false}, config.options);
    charts[id] = new Chart(document.getElementById(id), config);
  }

  async function load() {
    const days = document.getElementById("days").value;
    const response = await fetch(`${api}?days=${days}`, {headers: {Accept: "application/json"}});
    if (!response.ok) return;
    const data = await response.json();
    document.getElementById("stat-conversations").textContent = data.conversations;
    document.getElementById("stat-bot-share").textContent =
      data.conversations ? percent(data.resolved_by_bot / data.conversations) : "–";
    document.getElementById("stat-first-response").textContent = duration(data.median_first_response_seconds);
    document.getElementById("stat-thumbs-up").textContent =
      percent(data.thumbs_up_rate) + (data.answers_rated ? ` of ${data.answers_rated}` : "");
    draw("chart-per-day", {
      type: "bar",
      data: {labels: data.days, datasets: [{label: "conversations", data: data.conversations_per_day, backgroundColor: "#1f6feb"}]},
      options: {plugins: {legend: {display: false}}, scales: {y: {beginAtZero: true, ticks: {precision: 0}}}},
    });
    draw("chart-outcome", {
      type: "doughnut",
      data: {
        labels: ["resolved by the assistant", "escalated to a person"],
        datasets: [{data: [data.resolved_by_bot, data.escalated], backgroundColor: ["#2da44e", "#cf222e"]}],
      },
    });
    const reasons = Object.keys(data.escalation_reasons);
    draw("chart-reasons", {
      type: "bar",
      data: {
        labels: reasons.map((reason) => REASONS[reason] || reason),
        datasets: [{label: "tickets", data: reasons.map((reason) => data.escalation_reasons[reason]), backgroundColor: "#bf8700"}],
      },
      options: {indexAxis: "y", plugins: {legend: {display: false}}, scales: {x: {beginAtZero: true, ticks: {precision: 0}}}},
    });
    document.body.dataset.loaded = "true";
  }

  document.getElementById("days").addEventListener("change", load);
  load();
})();
