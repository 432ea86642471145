/* The reviewer UI's keyboard shortcuts and change notice. Plain JS, no build step; every action also works
   without it through the page's links and forms. */
(function () {
  "use strict";

  function typing(event) {
    var target = event.target;
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  function go(link) {
    if (link) window.location.href = link.getAttribute("href") || link.dataset.href;
  }

  // The list: j/k move the selection, Enter or o opens it.
  function listPage() {
    var rows = Array.prototype.slice.call(document.querySelectorAll("tr.rv-row"));
    var at = 0;
    function select(index) {
      if (!rows.length) return;
      at = Math.max(0, Math.min(rows.length - 1, index));
      rows.forEach(function (row, i) { row.classList.toggle("rv-selected", i === at); });
      rows[at].scrollIntoView({ block: "nearest" });
    }
    rows.forEach(function (row, i) {
      row.addEventListener("click", function (event) {
        if (event.target.tagName !== "A") { select(i); window.location.href = row.dataset.href; }
      });
    });
    select(0);
    document.addEventListener("keydown", function (event) {
      if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.key === "j") select(at + 1);
      else if (event.key === "k") select(at - 1);
      else if ((event.key === "Enter" || event.key === "o") && rows.length) window.location.href = rows[at].dataset.href;
      else return;
      event.preventDefault();
    });
  }

  // An item: j/k next/previous, a approve, e edit, r reject, l relabel, Esc closes a panel.
  function itemPage() {
    var panels = Array.prototype.slice.call(document.querySelectorAll(".rv-panel"));
    function open(id) {
      var panel = document.getElementById(id);
      if (!panel) return;
      panels.forEach(function (p) { p.hidden = p !== panel; });
      var field = panel.querySelector("textarea, input:not([type=hidden]), select");
      if (field) field.focus();
    }
    function closeAll() {
      panels.forEach(function (p) { p.hidden = true; });
      if (document.activeElement) document.activeElement.blur();
    }
    document.querySelectorAll("[data-open]").forEach(function (button) {
      button.addEventListener("click", function () { open(button.dataset.open); });
    });
    document.querySelectorAll("[data-close]").forEach(function (button) {
      button.addEventListener("click", closeAll);
    });
    // The decision also answers the checked near-duplicates: copy them into whichever form is sent.
    document.querySelectorAll("form.rv-decision").forEach(function (form) {
      form.addEventListener("submit", function () {
        form.querySelectorAll("input[data-group]").forEach(function (old) { old.remove(); });
        document.querySelectorAll(".rv-group-member:checked").forEach(function (box) {
          var input = document.createElement("input");
          input.type = "hidden"; input.name = "group"; input.value = box.value; input.dataset.group = "1";
          form.appendChild(input);
        });
        form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
      });
    });
    var answer = document.getElementById("edit-answer");
    if (answer) {
      answer.addEventListener("keydown", function (event) {
        if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
          event.preventDefault();
          answer.form.requestSubmit();
        }
      });
    }
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { closeAll(); return; }
      if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
      var approve = document.getElementById("approve-form");
      if (event.key === "j") go(document.getElementById("next-item"));
      else if (event.key === "k") go(document.getElementById("prev-item"));
      else if (event.key === "a" && approve) approveWithConfirmation(approve);
      else if (event.key === "e") open("edit-panel");
      else if (event.key === "r") open("reject-panel");
      else if (event.key === "l") open("relabel-panel");
      else return;
      event.preventDefault();
    });
    // Hovering a [n] in the draft lights up its passage.
    document.querySelectorAll(".rv-passage").forEach(function (passage) {
      passage.addEventListener("mouseenter", function () { passage.classList.add("rv-lit"); });
      passage.addEventListener("mouseleave", function () { passage.classList.remove("rv-lit"); });
    });
    watchForChanges();
  }

  // An excerpt draft (quotes nobody wrote as an answer) is published only after a second a: the first one shows
  // the warning and the confirmation box; the second ticks it and approves.
  function approveWithConfirmation(form) {
    var box = document.getElementById("confirm-extract");
    if (box && !box.checked) {
      if (form.dataset.armed === "1") box.checked = true;
      else {
        form.dataset.armed = "1";
        form.classList.add("rv-armed");
        var warning = document.getElementById("extract-warning");
        if (warning) warning.scrollIntoView({ block: "nearest" });
        return;
      }
    }
    form.requestSubmit();
  }

  // "2026-12-02 18:11 JST", as the server writes every time on the pages (zone from NEMAWASHI_TIMEZONE).
  function localTime(iso, zone, label) {
    var parts = {};
    new Intl.DateTimeFormat("en-US", { timeZone: zone || undefined, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
      .formatToParts(new Date(iso)).forEach(function (p) { parts[p.type] = p.value; });
    var text = parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" + parts.minute;
    return label ? text + " " + label : text;
  }

  // Someone else may decide the item while it is open: poll its version and say who changed it.
  function watchForChanges() {
    var item = document.getElementById("item");
    var notice = document.getElementById("stale-notice");
    if (!item || !notice || !window.fetch) return;
    var version = Number(item.dataset.version);
    var every = Number(item.dataset.pollMs) || 4000;
    function check() {
      fetch(item.dataset.stateUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (state) {
          if (!state || state.version === version) return;
          var when = localTime(state.updated_at, notice.dataset.tz, notice.dataset.tzLabel);
          notice.querySelector(".rv-stale-text").textContent = notice.dataset.template
            .replace("{who}", state.updated_by || "?").replace("{when}", when).replace("{version}", state.version);
          notice.hidden = false;
        })
        .catch(function () {});
    }
    window.setInterval(check, every);
  }

  if (document.body.dataset.page === "list") listPage();
  if (document.body.dataset.page === "item") itemPage();
  document.body.dataset.ready = "1"; // the shortcuts are listening
})();
