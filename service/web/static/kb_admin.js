/* The knowledge admin page (/admin/kb): upload a file, show its indexing progress by polling its status (stored in
   the database, so any server process answers), then reload the list; confirm before a delete. A refused upload is
   worded in the page's language from the code in the error's detail (service/retrieval/source_problems.py); the
   English page shows the API's reason itself. */
(function () {
  "use strict";
  var form = document.getElementById("kb-upload"), status = document.getElementById("kb-status");
  var bar = document.getElementById("kb-bar");
  Array.prototype.forEach.call(document.querySelectorAll("form[data-confirm]"), function (f) {
    f.addEventListener("submit", function (event) { if (!window.confirm(f.dataset.confirm)) event.preventDefault(); });
  });
  if (!form || !status || !bar) return;
  var words = status.dataset, names = JSON.parse(words.statuses || "{}"), problems = JSON.parse(words.problems || "{}");
  var verbatim = words.verbatim === "true";

  /* A message with its {name} placeholders filled from values. */
  function fill(message, values) {
    return message.replace(/\{(\w+)\}/g, function (whole, name) {
      var value = values[name];
      if (value === undefined || value === null) return whole;
      return typeof value === "number" ? value.toLocaleString() : String(value);
    });
  }

  function refusal(body, statusText) {
    var error = (body && body.error) || statusText;
    if (verbatim && error) return error;
    var detail = body && typeof body.detail === "object" && body.detail !== null && !Array.isArray(body.detail) ? body.detail : {};
    return fill(problems[detail.code] || problems.unknown || error, detail);
  }

  function show(file) {
    bar.hidden = false; bar.value = file.percent;
    var text = words.progress.replace("{status}", names[file.status] || file.status)
      .replace("{done}", file.done.toLocaleString()).replace("{total}", file.total.toLocaleString());
    if (file.message) text += " — " + (verbatim ? file.message : fill(words.failedNote || "", { message: file.message }));
    status.textContent = text;
    status.dataset.state = file.status;
  }

  function poll(url) {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.json(); })
      .then(function (file) {
        show(file);
        if (file.status === "indexed") { status.textContent = words.done; window.location.reload(); }
        else if (file.status !== "failed") window.setTimeout(function () { poll(url); }, 400);
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    status.textContent = words.uploading; status.dataset.state = "uploading";
    fetch(form.getAttribute("action"), { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (response) {
        return response.json().catch(function () { return {}; })
          .then(function (body) { return { ok: response.ok, body: body, text: response.statusText }; });
      })
      .then(function (reply) {
        if (!reply.ok) { status.textContent = refusal(reply.body, reply.text); status.dataset.state = "refused"; return; }
        show(reply.body);
        poll(reply.body.url);
      });
  });
})();
