// Live status for the applicant's tracking page: text only, never HTML from data.
(function () {
  "use strict";
  var root = document.getElementById("live");
  if (!root || !window.WebSocket) { return; }
  var code = root.dataset.code;
  var state = document.getElementById("live-state");
  var delay = 1000;
  var leaving = false;
  // A form being sent navigates anyway; a reload now would race it and lose its answer.
  document.addEventListener("submit", function () { leaving = true; });
  var maxDelay = 30000;

  function setState(on) {
    state.textContent = on ? "Live" : "Reconnecting…";
    state.className = "live-state " + (on ? "on" : "off");
  }

  function render(status) {
    var outstanding = status.outstanding.map(function (o) { return o.requirement; }).join(",");
    var flags = String(status.can_withdraw) + String(status.can_resubmit) + String(status.accepts_uploads);
    flags = flags.replace(/true/g, "True").replace(/false/g, "False");
    if (leaving) { return; }
    if (outstanding !== root.dataset.outstanding || flags !== root.dataset.flags) {
      // The forms on the page depend on these: load the page again for fresh forms.
      window.location.reload();
      return;
    }
    root.dataset.version = status.version;
    document.getElementById("status-label").textContent = status.status_label;
    document.getElementById("status-text").textContent = status.status_text;
    var list = document.getElementById("timeline");
    while (list.firstChild) { list.removeChild(list.firstChild); }
    status.timeline.slice().reverse().forEach(function (entry) {
      var li = document.createElement("li");
      var time = document.createElement("time");
      time.dateTime = entry.at;
      time.textContent = window.gcxWhen(entry.at);
      var title = document.createElement("strong");
      title.textContent = " " + entry.title;
      li.appendChild(time);
      li.appendChild(title);
      if (entry.detail) {
        var detail = document.createElement("span");
        detail.textContent = " " + entry.detail;
        li.appendChild(detail);
      }
      list.appendChild(li);
    });
  }

  // The thread, rebuilt from the socket's list: text only.
  function renderMessages(list) {
    var box = document.getElementById("thread");
    if (!box || !list) { return; }
    while (box.firstChild) { box.removeChild(box.firstChild); }
    list.forEach(function (m) {
      var item = document.createElement("article");
      item.className = "message-item from-" + m.from;
      var meta = document.createElement("p");
      meta.className = "meta";
      meta.textContent = (m.from === "applicant" ? "You" : "The programme") + " · " + (window.gcxWhen ? window.gcxWhen(m.at) : m.at);
      var body = document.createElement("p");
      body.className = "note-body";
      body.textContent = m.body;
      item.appendChild(meta);
      item.appendChild(body);
      if (m.file) {
        var file = document.createElement("p");
        file.className = "hint";
        file.textContent = "Attached: " + m.file;
        item.appendChild(file);
      }
      box.appendChild(item);
    });
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/ws/track/" + encodeURIComponent(code));
    socket.onopen = function () { delay = 1000; setState(true); };
    socket.onmessage = function (event) {
      var message = JSON.parse(event.data);
      if (message.type === "status") { render(message.data); renderMessages(message.data.messages); }
    };
    socket.onclose = function () {
      setState(false);
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, maxDelay);
    };
  }
  connect();
})();
