// mcpctl UI: progressive enhancement only (every page works without it).
// Shows each <time datetime> also in the browser's local time zone, as a tooltip.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("time[datetime]").forEach(function (t) {
    var d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d.getTime())) {
      t.title = d.toLocaleString();
    }
  });
});
