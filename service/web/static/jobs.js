/* The survey upload page (/jobs): send the file, show progress from the job's event stream in the page's language.
   A refused upload is explained in the page's words, chosen by the code in the error's detail
   (service/jobs/problems.py), never by the API's English `error`. */
(function () {
  "use strict";
  var form = document.getElementById("upload"), status = document.getElementById("status");
  var bar = document.getElementById("bar"), links = document.getElementById("links");
  if (!form || !status || !bar || !links) return;
  var words = status.dataset, names = JSON.parse(words.statuses || "{}"), problems = JSON.parse(words.problems || "{}");

  /* A message with its {name} placeholders filled from values: lists joined, numbers grouped. */
  function fill(message, values) {
    return message.replace(/\{(\w+)\}/g, function (whole, name) {
      var value = values[name];
      if (value === undefined || value === null) return whole;
      if (Array.isArray(value)) return value.join(words.separator || ", ");
      return typeof value === "number" ? value.toLocaleString() : String(value);
    });
  }

  function refusal(httpStatus, body, statusText) {
    var detail = body && typeof body.detail === "object" && body.detail !== null && !Array.isArray(body.detail) ? body.detail : {};
    var message = problems[detail.code] || problems["http_" + httpStatus] || problems.unknown;
    return fill(message, Object.assign({ status: httpStatus, error: (body && body.error) || statusText }, detail));
  }

  function show(job) {
    bar.hidden = false; bar.value = job.percent;
    var text = words.progress.replace("{status}", names[job.status] || job.status)
      .replace("{done}", job.done_rows.toLocaleString()).replace("{total}", job.total_rows.toLocaleString());
    if (job.error_rows) text += words.errors.replace("{n}", job.error_rows.toLocaleString());
    if (job.status === "failed") {  // job.message is the server's English: the Japanese page says what to do instead
      var note = fill(words.failedNote || "", { message: job.message || "" });
      if (note) text += " — " + note;
    }
    status.textContent = text;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    links.hidden = true; status.textContent = words.uploading;
    fetch(form.getAttribute("action") || "/v1/jobs/classify", { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (response) {
        return response.json().catch(function () { return {}; })
          .then(function (body) { return { ok: response.ok, status: response.status, body: body, text: response.statusText }; });
      })
      .then(function (reply) {
        if (!reply.ok) { status.textContent = refusal(reply.status, reply.body, reply.text); return; }
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
      }, function () { status.textContent = problems.network; });
  });
})();
