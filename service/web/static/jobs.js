/* The survey upload page (/jobs): send the file, show progress from the job's event stream in the page's language. */
(function () {
  "use strict";
  var form = document.getElementById("upload"), status = document.getElementById("status");
  var bar = document.getElementById("bar"), links = document.getElementById("links");
  if (!form || !status || !bar || !links) return;
  var words = status.dataset, names = JSON.parse(words.statuses || "{}");

  function show(job) {
    bar.hidden = false; bar.value = job.percent;
    var text = words.progress.replace("{status}", names[job.status] || job.status)
      .replace("{done}", job.done_rows.toLocaleString()).replace("{total}", job.total_rows.toLocaleString());
    if (job.error_rows) text += words.errors.replace("{n}", job.error_rows.toLocaleString());
    if (job.message) text += " — " + job.message;
    status.textContent = text;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    links.hidden = true; status.textContent = words.uploading;
    fetch(form.getAttribute("action") || "/v1/jobs/classify", { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body, text: response.statusText }; });
      })
      .then(function (reply) {
        if (!reply.ok) { status.textContent = reply.body.error || reply.text; return; }
        show(reply.body);
        var events = new EventSource("/v1/jobs/" + reply.body.id + "/events");
        function finish(e) {
          var job = JSON.parse(e.data); show(job); events.close();
          if (job.status === "done") {
            ["csv", "xlsx", "report"].forEach(function (kind) { document.getElementById(kind).href = job.links[kind]; });
            links.hidden = false;
          }
        }
        events.addEventListener("progress", function (e) { show(JSON.parse(e.data)); });
        events.addEventListener("done", finish);
        events.addEventListener("failed", finish);
      });
  });
})();
