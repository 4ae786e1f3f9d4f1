// The pages' one script (served from /static, so the Content-Security-Policy can forbid every
// inline script): times in the viewer's own zone, countdowns that stay current, the periodic
// refresh of a page's live parts, and a confirmation before a destructive button.
(function () {
  "use strict";

  var dateFormat = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
  // For tables: the year only when it is not this one.
  var shortFormat = new Intl.DateTimeFormat(undefined, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });

  function formatDate(at, show) {
    var sameYear = at.getFullYear() === new Date().getFullYear();
    return (show === "short" && sameYear ? shortFormat : dateFormat).format(at);
  }

  function span(minutes) {
    if (minutes < 120) return minutes + " min";
    if (minutes < 48 * 60) return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
    return Math.floor(minutes / 1440) + " days";
  }

  // Same words as web/timefmt.py: "in 42 min", "overdue by 5 min", "3 min ago".
  function countdown(at, now) {
    var minutes = Math.floor((at - now) / 60000);
    return minutes < 0 ? "overdue by " + span(-minutes) : "in " + span(minutes);
  }

  function ago(at, now) {
    var minutes = -Math.floor((at - now) / 60000) - 1;
    return minutes < 1 ? "just now" : span(minutes) + " ago";
  }

  function renderTimes(root) {
    var now = Date.now();
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var at = new Date(el.getAttribute("datetime"));
      if (isNaN(at.getTime())) return;
      var show = el.getAttribute("data-show") || "local";
      el.title = dateFormat.format(at);
      if (show === "countdown") {
        el.textContent = countdown(at, now);
        el.classList.toggle("overdue", at < now);
      } else if (show === "ago") {
        el.textContent = ago(at, now);
      } else {
        el.textContent = formatDate(at, show);
        el.title = at.toISOString();
      }
    });
  }

  // Replace each element marked data-live with its fresh copy from the same URL, unless the
  // reader is typing in a form inside it. The new markup comes from our own server, escaped
  // like the first; scripts in it never run (DOMParser and the CSP both see to that).
  function refresh() {
    var live = document.querySelectorAll("[data-live][id]");
    if (!live.length || document.hidden) return;
    var active = document.activeElement;
    if (active && active.closest && active.closest("[data-live] form")) return;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Refresh": "1" } })
      .then(function (response) {
        if (!response.ok || response.redirected) return null;
        return response.text();
      })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        live.forEach(function (el) {
          var replacement = fresh.getElementById(el.id);
          if (replacement) {
            el.replaceWith(replacement);
            renderTimes(replacement);
          }
        });
      })
      .catch(function () { /* offline for a moment: the next round tries again */ });
  }

  function confirmButtons() {
    document.addEventListener("submit", function (event) {
      var question = event.target.getAttribute("data-confirm");
      if (question && !window.confirm(question)) event.preventDefault();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    renderTimes(document);
    confirmButtons();
    setInterval(function () { renderTimes(document); }, 20000);
    var seconds = Number(document.body.getAttribute("data-refresh") || 0);
    if (seconds > 0) setInterval(refresh, seconds * 1000);
  });
})();
