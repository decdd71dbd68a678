// The pages' one date format ("3 Dec 2026, 14:05") in the deployment's time zone (the
// zone GCX_TIME_ZONE names, given on <body data-time-zone>), for scripts that update pages.
(function () {
  "use strict";
  var options = { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  var format;
  try {
    format = new Intl.DateTimeFormat("en-GB", Object.assign({ timeZone: document.body.dataset.timeZone || "UTC" }, options));
  } catch (e) {
    format = new Intl.DateTimeFormat("en-GB", Object.assign({ timeZone: "UTC" }, options));
  }
  window.gcxWhen = function (iso) {
    if (!iso) { return "—"; }
    var p = {};
    format.formatToParts(new Date(iso)).forEach(function (x) { p[x.type] = x.value; });
    return p.day + " " + p.month + " " + p.year + ", " + p.hour + ":" + p.minute;
  };
})();
