// The bulk-classification upload page (/jobs): upload, then follow the job's progress events.
// A file, not an inline script, so the page's Content-Security-Policy can allow scripts from this origin only.
const form = document.getElementById("upload"), status = document.getElementById("status");
const bar = document.getElementById("bar"), links = document.getElementById("links");
function show(job) {
  bar.hidden = false; bar.value = job.percent;
  status.textContent = `${job.status}: ${job.done_rows} / ${job.total_rows} rows` +
    (job.error_rows ? `, ${job.error_rows} errors` : "") + (job.message ? ` — ${job.message}` : "");
}
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  links.hidden = true; status.textContent = "uploading…";
  const response = await fetch(form.action, {method: "POST", body: new FormData(form)});
  const body = await response.json();
  if (!response.ok) { status.textContent = body.error || response.statusText; return; }
  show(body);
  const events = new EventSource(`/v1/jobs/${body.id}/events`);
  const finish = (e) => {
    const job = JSON.parse(e.data); show(job); events.close();
    if (job.status === "done") {
      for (const kind of ["csv", "xlsx", "report"]) document.getElementById(kind).href = job.links[kind];
      links.hidden = false;
    }
  };
  events.addEventListener("progress", (e) => show(JSON.parse(e.data)));
  events.addEventListener("done", finish);
  events.addEventListener("failed", finish);
});
