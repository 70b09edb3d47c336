// The progress page: send the pasted reviews as one polarity:batch task, follow the task's
// event stream (EventSource) to drive the bar, show each review's score when it ends.
// Every failure is shown in the page: a refused request, a failed task, a lost stream.
"use strict";

(() => {
  const tasksPrefix = document.body.dataset.tasksPrefix || "tasks";
  const form = document.getElementById("reviews-form");
  const textarea = document.getElementById("reviews");
  const button = document.getElementById("submit");
  const bar = document.getElementById("bar");
  const fill = document.getElementById("bar-fill");
  const percent = document.getElementById("percent");
  const status = document.getElementById("status");
  const updates = document.getElementById("updates");
  const errorBox = document.getElementById("error");
  const summary = document.getElementById("summary");
  const table = document.getElementById("results");
  const rows = table.querySelector("tbody");

  const STATES = ["queued", "started", "progress", "retrying"];
  const WAITING = {
    queued: "Queued: waiting for a worker.",
    started: "A worker started the task.",
  };

  function setProgress(value, message) {
    const bounded = Math.max(0, Math.min(100, value));
    fill.style.width = `${bounded}%`;
    bar.setAttribute("aria-valuenow", String(Math.round(bounded)));
    percent.textContent = `${Math.round(bounded)}%`;
    if (message !== undefined) status.textContent = message;
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function reset() {
    errorBox.hidden = true;
    errorBox.textContent = "";
    rows.replaceChildren();
    table.hidden = true;
    summary.textContent = "Scores appear here when the batch ends.";
    updates.textContent = "";
    setProgress(0, "Sending…");
  }

  // FastAPI and Flask answer {"detail": "..."} or {"detail": [{"loc": [...], "msg": "..."}]}.
  function describe(body) {
    if (!body || body.detail === undefined) return "no details given";
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) {
      return body.detail
        .map((item) => `${(item.loc || []).slice(1).join(".") || "body"}: ${item.msg}`)
        .join("; ");
    }
    return JSON.stringify(body.detail);
  }

  async function send(reviews) {
    // Up to 20 progress steps however many reviews there are.
    const chunkSize = Math.max(1, Math.ceil(reviews.length / 20));
    let response;
    try {
      response = await fetch(`${tasksPrefix}/polarity:batch`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ reviews, chunk_size: chunkSize }),
      });
    } catch (error) {
      throw new Error(`Could not reach the service: ${error.message}`);
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      throw new Error(`The service refused the reviews (HTTP ${response.status}): ${describe(body)}`);
    }
    if (!body || typeof body.events_url !== "string") {
      throw new Error("The service answered without an events URL.");
    }
    return body;
  }

  function follow(accepted) {
    return new Promise((resolve, reject) => {
      const source = new EventSource(accepted.events_url);
      let received = 0;
      let finished = false;
      const finish = (settle) => {
        finished = true;
        source.close();
        settle();
      };
      const read = (event) => {
        received += 1;
        updates.textContent = `${received} update${received === 1 ? "" : "s"} received from the event stream.`;
        return JSON.parse(event.data);
      };
      const onStatus = (event) => {
        const info = read(event);
        if (info.progress) {
          setProgress(info.progress.percent, info.progress.message || "Scoring…");
        } else if (info.state === "retrying") {
          const why = info.error ? `${info.error.type}: ${info.error.message}` : "an error";
          status.textContent = `Retrying after ${why}.`;
        } else {
          status.textContent = WAITING[info.state] || info.state;
        }
      };
      for (const name of STATES) source.addEventListener(name, onStatus);
      source.addEventListener("succeeded", (event) => {
        const info = read(event);
        finish(() => resolve(info.result));
      });
      source.addEventListener("failed", (event) => {
        const info = read(event);
        const why = info.error ? `${info.error.type}: ${info.error.message}` : "no error details";
        finish(() => reject(new Error(`Scoring failed: ${why}`)));
      });
      source.addEventListener("revoked", (event) => {
        read(event);
        finish(() => reject(new Error("The task was revoked before it finished.")));
      });
      source.addEventListener("unknown", (event) => {
        read(event);
        finish(() => reject(new Error("The service has no record of this task (expired?).")));
      });
      source.onerror = () => {
        if (!finished) {
          finish(() => reject(new Error("Lost the event stream before the task finished.")));
        }
      };
    });
  }

  function showScores(reviews, scores) {
    if (!Array.isArray(scores) || scores.length !== reviews.length) {
      throw new Error(`Expected ${reviews.length} scores, got ${JSON.stringify(scores)}.`);
    }
    const counts = { positive: 0, negative: 0, neutral: 0 };
    scores.forEach((score, index) => {
      const sign = score > 0 ? "positive" : score < 0 ? "negative" : "neutral";
      counts[sign] += 1;
      const row = document.createElement("tr");
      row.className = sign;
      for (const [name, text] of [
        ["index", String(index + 1)],
        ["review", reviews[index]],
        ["score", `${score > 0 ? "+" : ""}${score.toFixed(2)}`],
        ["sign", sign],
      ]) {
        const cell = document.createElement("td");
        cell.className = name;
        cell.textContent = text;
        row.append(cell);
      }
      rows.append(row);
    });
    table.hidden = false;
    summary.textContent =
      `${scores.length} review${scores.length === 1 ? "" : "s"}: ${counts.positive} positive, ` +
      `${counts.negative} negative, ${counts.neutral} neutral.`;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const reviews = textarea.value
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter((line) => line.length > 0);
    reset();
    if (reviews.length === 0) {
      setProgress(0, "Nothing sent.");
      showError("Paste at least one review, one per line.");
      return;
    }
    button.disabled = true;
    try {
      const accepted = await send(reviews);
      status.textContent = "Sent; waiting for the first update.";
      const scores = await follow(accepted);
      showScores(reviews, scores);
      setProgress(100, "Done.");
    } catch (error) {
      status.textContent = "Stopped.";
      showError(error.message);
    } finally {
      button.disabled = false;
    }
  });
})();
