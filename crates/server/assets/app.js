// Roster's web pages work without this file; it only adds copy buttons and
// live refresh of the parts of a page marked for it.
(function () {
  "use strict";

  // <button data-copy="ID"> copies the text of the element with that id.
  document.addEventListener("click", function (ev) {
    var button = ev.target.closest("button[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  // Copy buttons are hidden in the page (they need this script) and shown here.
  document.querySelectorAll("button[data-copy]").forEach(function (b) {
    b.hidden = false;
  });

  // <div data-refresh="URL" data-every="SECONDS"> is replaced by what URL
  // answers, every few seconds, while the page is visible.
  document.querySelectorAll("[data-refresh]").forEach(function (el) {
    var url = el.getAttribute("data-refresh");
    var every = Math.max(2, parseInt(el.getAttribute("data-every") || "5", 10)) * 1000;
    setInterval(function () {
      if (document.hidden) return;
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) el.innerHTML = html; })
        .catch(function () {});
    }, every);
  });
})();
