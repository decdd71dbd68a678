// Live back office: websockets with reconnect (capped exponential backoff) and a 5-minute
// fallback refresh. Data is only ever written with textContent and attributes, never as HTML.
(function () {
  "use strict";
  var indicator = document.getElementById("connection");
  var SVG = "http://www.w3.org/2000/svg";
  var FALLBACK_MS = 5 * 60 * 1000;

  function setConnected(on) {
    if (!indicator) { return; }
    indicator.textContent = on ? "Live" : "Offline: reconnecting";
    indicator.className = "live-state " + (on ? "on" : "off");
    indicator.dataset.connected = on ? "1" : "0";
  }

  function live(path, onMessage, onDown) {
    var delay = 1000;
    var fallback = null;
    function connect() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      var socket = new WebSocket(scheme + window.location.host + path);
      socket.onopen = function () {
        delay = 1000;
        setConnected(true);
        if (fallback) { clearInterval(fallback); fallback = null; }
      };
      socket.onmessage = function (event) { onMessage(JSON.parse(event.data)); };
      socket.onclose = function () {
        setConnected(false);
        if (!fallback && onDown) { fallback = setInterval(onDown, FALLBACK_MS); }
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 30000);
      };
    }
    connect();
  }

  function text(selector, value) {
    var node = document.querySelector(selector);
    if (node) { node.textContent = String(value); }
  }

  function cell(row, value, href) {
    var td = document.createElement("td");
    if (href) {
      var a = document.createElement("a");
      a.setAttribute("href", href);
      a.textContent = value;
      td.appendChild(a);
    } else {
      td.textContent = value;
    }
    row.appendChild(td);
  }

  var when = window.gcxWhen;

  function svg(name, attrs, content) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (content !== undefined) { node.textContent = String(content); }
    return node;
  }

  // The same drawing as the dashboard template's: bars with their values, a y axis from 0
  // to the highest day, a day label every fifth day.
  function drawChart(chart, days) {
    var peak = Math.max.apply(null, days.map(function (x) { return x.count; }).concat([1]));
    var bars = chart.querySelector("#bars");
    var labels = chart.querySelector("#days");
    while (bars.firstChild) { bars.removeChild(bars.firstChild); }
    while (labels.firstChild) { labels.removeChild(labels.firstChild); }
    days.forEach(function (day, i) {
      var h = Math.round(day.count / peak * 1500) / 10;
      var rect = svg("rect", { x: 40 + i * 20 + 2, y: 160 - h, width: 16, height: h });
      rect.appendChild(svg("title", {}, day.day + ": " + day.count));
      bars.appendChild(rect);
      if (day.count) {
        bars.appendChild(svg("text", { "class": "value", x: 40 + i * 20 + 10, y: 160 - h - 3, "text-anchor": "middle" }, day.count));
      }
      if (i % 5 === 0 || i === days.length - 1) {
        var label = Number(day.day.slice(8)) + "/" + Number(day.day.slice(5, 7));
        labels.appendChild(svg("text", { x: 40 + i * 20 + 10, y: 178, "text-anchor": "middle" }, label));
      }
    });
    text("#y-max", peak);
    text("#y-mid", Math.round(peak / 2 * 10) / 10);
    text("#per-day-peak", peak);
    if (days.length) { text("#per-day-first", days[0].day); text("#per-day-last", days[days.length - 1].day); }
  }

  function renderDashboard(d) {
    text("#total", d.total);
    d.statuses.forEach(function (s) {
      text('[data-count="' + s.status + '"]', s.count);
      text('[data-percent="' + s.status + '"]', s.percent.toFixed(1));
    });
    Object.keys(d.notifications).forEach(function (k) { text('[data-notifications="' + k + '"]', d.notifications[k]); });
    var workload = d.workload || {};
    text("#queue-unassigned", d.unassigned || 0);
    text("#unread-messages", d.unread_messages || 0);
    text("#expired-documents", d.expired_documents || 0);
    var mine = document.getElementById("queue-mine");
    if (mine) { mine.textContent = String(workload[mine.dataset.me] || 0); }
    document.querySelectorAll("[data-workload]").forEach(function (cellNode) {
      cellNode.textContent = String(workload[cellNode.dataset.workload] || 0);
    });
    var held = d.workload_oldest || {};
    document.querySelectorAll("[data-held]").forEach(function (cellNode) {
      var at = held[cellNode.dataset.held];
      cellNode.textContent = at ? when(at) : "\u2014";
    });
    var ageing = d.ageing || {};
    document.querySelectorAll("[data-ageing]").forEach(function (cellNode) {
      var key = cellNode.dataset.ageing, cut = key.lastIndexOf(":");
      var counts = ageing[key.slice(0, cut)] || {};
      cellNode.textContent = String(counts[key.slice(cut + 1)] || 0);
    });
    var overdue = d.overdue || {};
    document.querySelectorAll("[data-overdue]").forEach(function (cellNode) {
      cellNode.textContent = String(overdue[cellNode.dataset.overdue] || 0);
    });
    Object.keys(d.oldest_waiting).forEach(function (k) { text('[data-age="' + k + '"]', when(d.oldest_waiting[k])); });
    var chart = document.getElementById("per-day");
    if (chart) { drawChart(chart, d.per_day); }
    var recent = document.getElementById("recent");
    if (recent) {
      while (recent.firstChild) { recent.removeChild(recent.firstChild); }
      d.recent.forEach(function (r) {
        var row = document.createElement("tr");
        cell(row, r.tracking_code, "/backoffice/applications/" + encodeURIComponent(r.id));
        cell(row, r.business_name);
        cell(row, r.status_label);
        cell(row, when(r.created_at));
        recent.appendChild(row);
      });
    }
  }

  function refreshDashboard() {
    fetch("/backoffice/dashboard.json", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) { if (d) { renderDashboard(d); } });
  }

  if (document.getElementById("dashboard")) {
    var button = document.getElementById("refresh");
    if (button) { button.addEventListener("click", refreshDashboard); }
    live("/ws/dashboard", function (m) { if (m.type === "dashboard") { renderDashboard(m.data); } }, refreshDashboard);
  }

  var table = document.getElementById("applications");
  if (table) {
    var statusLabels = JSON.parse(table.dataset.labels || "{}");
    live("/ws/dashboard", function (m) {
      if (m.type !== "dashboard") { return; }
      (m.data.changes || []).forEach(function (change) {
        var row = table.querySelector('tr[data-id="' + Number(change.application_id) + '"]');
        if (row) {
          var badge = row.querySelector("[data-status]");
          badge.textContent = statusLabels[change.to] || change.to;
          badge.className = "badge status-" + change.to;
          row.classList.add("changed");
        }
      });
    }, function () { window.location.reload(); });
  }

  var detail = document.getElementById("live-application");
  if (detail) {
    var touched = false;
    document.addEventListener("input", function () { touched = true; });
    document.addEventListener("submit", function () { touched = true; });
    live("/ws/applications/" + encodeURIComponent(detail.dataset.id), function (m) {
      var version = m.type === "application" ? m.data.version : null;
      if (m.type === "application" && String(version) === detail.dataset.version) { return; }
      if (touched) {
        document.getElementById("stale-banner").hidden = false;
      } else {
        window.location.reload();
      }
    }, null);
  }

  var changed = document.getElementById("notifications-changed");
  if (changed) {
    var seen = false;
    live("/ws/notifications", function (m) {
      // A snapshot after the first one means live updates were interrupted: something may
      // have changed unseen.
      if (m.type === "notification" || (m.type === "notifications" && seen)) { changed.hidden = false; }
      if (m.type === "notifications") { seen = true; }
    }, function () { window.location.reload(); });
  }
})();
