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

  function when(iso) { return iso ? iso.replace("T", " ").slice(0, 16) : "—"; }

  function renderDashboard(d) {
    text("#total", d.total);
    d.statuses.forEach(function (s) {
      text('[data-count="' + s.status + '"]', s.count);
      text('[data-percent="' + s.status + '"]', s.percent.toFixed(1));
    });
    Object.keys(d.notifications).forEach(function (k) { text('[data-notifications="' + k + '"]', d.notifications[k]); });
    Object.keys(d.oldest_waiting).forEach(function (k) { text('[data-age="' + k + '"]', when(d.oldest_waiting[k])); });
    var chart = document.getElementById("per-day");
    if (chart) {
      var peak = Math.max.apply(null, d.per_day.map(function (x) { return x.count; }).concat([1]));
      Array.prototype.slice.call(chart.querySelectorAll("rect")).forEach(function (r) { chart.removeChild(r); });
      d.per_day.forEach(function (day, i) {
        var h = Math.round(day.count / peak * 1400) / 10;
        var rect = document.createElementNS(SVG, "rect");
        rect.setAttribute("x", String(i * 20 + 2));
        rect.setAttribute("y", String(150 - h));
        rect.setAttribute("width", "16");
        rect.setAttribute("height", String(h));
        var title = document.createElementNS(SVG, "title");
        title.textContent = day.day + ": " + day.count;
        rect.appendChild(title);
        chart.insertBefore(rect, chart.firstChild);
      });
      text("#per-day-peak", peak);
    }
    var recent = document.getElementById("recent");
    if (recent) {
      while (recent.firstChild) { recent.removeChild(recent.firstChild); }
      d.recent.forEach(function (r) {
        var row = document.createElement("tr");
        cell(row, r.tracking_code, "/backoffice/applications/" + encodeURIComponent(r.id));
        cell(row, r.business_name);
        cell(row, r.status);
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
    live("/ws/dashboard", function (m) {
      if (m.type !== "dashboard") { return; }
      (m.data.changes || []).forEach(function (change) {
        var row = table.querySelector('tr[data-id="' + Number(change.application_id) + '"]');
        if (row) { row.querySelector("[data-status]").textContent = change.to; row.classList.add("changed"); }
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
    live("/ws/notifications", function (m) { if (m.type === "notification") { changed.hidden = false; } }, function () { window.location.reload(); });
  }
})();
