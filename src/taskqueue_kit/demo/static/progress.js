// The progress page: send the pasted reviews as one polarity:batch task and follow the
// task's event stream (EventSource). Each progress event's message carries the scores
// found since the last one, so rows appear while the worker works; the elapsed time, the
// rate and a timeline of the events show the queue at work. Every failure is shown in the
// page: a refused request (naming the reviews at fault), a failed task, a lost stream.
"use strict";

(() => {
  const tasksPrefix = document.body.dataset.tasksPrefix || "tasks";
  const form = document.getElementById("reviews-form");
  const textarea = document.getElementById("reviews");
  const paceBox = document.getElementById("pace");
  const button = document.getElementById("submit");
  const bar = document.getElementById("bar");
  const fill = document.getElementById("bar-fill");
  const percent = document.getElementById("percent");
  const status = document.getElementById("status");
  const elapsedOut = document.getElementById("elapsed");
  const scoredOut = document.getElementById("scored");
  const rateOut = document.getElementById("rate");
  const updates = document.getElementById("updates");
  const timeline = document.getElementById("timeline");
  const errorBox = document.getElementById("error");
  const failures = document.getElementById("failures");
  const summary = document.getElementById("summary");
  const table = document.getElementById("results");
  const rows = table.querySelector("tbody");

  const STATES = ["queued", "started", "progress", "retrying"];
  const WAITING = {
    queued: "Queued: waiting for a worker.",
    started: "A worker started the task.",
  };
  const LOGGED = { queued: "queued, waiting for a worker", started: "a worker started the task" };
  const PACED_SECONDS = 5; // a paced batch takes about this long in all
  const MAX_PACE = 0.5; // seconds a review, at most
  const MAX_TIMELINE = 200;
  const EXCERPT = 60;

  // The batch being followed: its reviews, one row per score shown, and its clock.
  let run = null;

  const plural = (count, word) => `${count} ${word}${count === 1 ? "" : "s"}`;
  const seconds = (ms) => `${(ms / 1000).toFixed(2)} s`;
  const excerpt = (text) => (text.length > EXCERPT ? `${text.slice(0, EXCERPT - 1)}…` : text);
  const signOf = (score) => (score > 0 ? "positive" : score < 0 ? "negative" : "neutral");

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

  // What failed, one line a review where the service said which.
  function showFailures(items) {
    failures.replaceChildren(
      ...items.map((item) => {
        const line = document.createElement("li");
        line.textContent = item;
        return line;
      }),
    );
    failures.hidden = items.length === 0;
  }

  function log(text) {
    const item = document.createElement("li");
    const at = document.createElement("span");
    at.className = "at";
    at.textContent = run ? `+${seconds(performance.now() - run.sentAt)}` : "";
    item.append(at, ` ${text}`);
    timeline.append(item);
    while (timeline.children.length > MAX_TIMELINE) timeline.firstElementChild.remove();
  }

  function updateStats() {
    if (!run) return;
    const now = run.endedAt ?? performance.now();
    elapsedOut.textContent = seconds(now - run.sentAt);
    scoredOut.textContent = `${run.scored} of ${run.reviews.length}`;
    if (run.startedAt !== null && run.scored > 0 && now > run.startedAt) {
      const rate = run.scored / ((now - run.startedAt) / 1000);
      rateOut.textContent = `${rate >= 100 ? Math.round(rate) : rate.toFixed(1)} reviews/s${run.pace ? " (paced)" : ""}`;
    }
    if (run.scored === 0) {
      if (run.endedAt !== null) summary.textContent = "No scores.";
      return;
    }
    const counts = { positive: 0, negative: 0, neutral: 0 };
    for (const row of run.rows) if (row.dataset.sign) counts[row.dataset.sign] += 1;
    const tally = `${counts.positive} positive, ${counts.negative} negative, ${counts.neutral} neutral.`;
    summary.textContent =
      run.scored === run.reviews.length
        ? `${plural(run.scored, "review")}: ${tally}`
        : `${run.scored} of ${plural(run.reviews.length, "review")} scored so far: ${tally}`;
  }

  function addRow(index) {
    const row = document.createElement("tr");
    row.className = "pending";
    for (const [name, text] of [
      ["index", String(index + 1)],
      ["review", run.reviews[index]],
      ["score", "…"],
      ["sign", "not seen yet"],
    ]) {
      const cell = document.createElement("td");
      cell.className = name;
      cell.textContent = text;
      row.append(cell);
    }
    rows.append(row);
    run.rows.push(row);
    table.hidden = false;
    return row;
  }

  // Show scores[i] as review first + i's; a row skipped by a missed event waits as pending.
  // ``source`` ("progress" or "result") tells, in data-source, when each score was shown.
  function applyScores(first, scores, source) {
    scores.forEach((score, offset) => {
      const index = first + offset;
      if (typeof score !== "number" || index >= run.reviews.length) return;
      while (run.rows.length <= index) addRow(run.rows.length);
      const row = run.rows[index];
      if (!row.dataset.source) run.scored += 1;
      row.dataset.source ||= source;
      const sign = signOf(score);
      row.dataset.sign = sign;
      row.className = sign;
      row.querySelector("td.score").textContent = `${score > 0 ? "+" : ""}${score.toFixed(2)}`;
      row.querySelector("td.sign").textContent = sign;
    });
    updateStats();
  }

  // The batch task's message is JSON: {"text", "first", "scores"}; any other is plain words.
  function readMessage(message) {
    if (typeof message === "string" && message.startsWith("{")) {
      try {
        const parsed = JSON.parse(message);
        if (parsed && typeof parsed.text === "string") return parsed;
      } catch {
        // not the batch task's JSON: show it as it is
      }
    }
    return { text: message || "Scoring…" };
  }

  function reset() {
    errorBox.hidden = true;
    errorBox.textContent = "";
    showFailures([]);
    rows.replaceChildren();
    table.hidden = true;
    timeline.replaceChildren();
    summary.textContent = "Scores appear here as the worker finds them.";
    updates.textContent = "";
    for (const out of [elapsedOut, scoredOut, rateOut]) out.textContent = "–";
    document.body.dataset.state = "sending";
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

  // The reviews a refusal names: field errors at ["body", "reviews", i].
  function refusedReviews(reviews, body) {
    if (!body || !Array.isArray(body.detail)) return [];
    return body.detail
      .filter((item) => Array.isArray(item.loc) && item.loc[1] === "reviews" && Number.isInteger(item.loc[2]))
      .map((item) => {
        const index = item.loc[2];
        return `Review ${index + 1} (“${excerpt(reviews[index] ?? "")}”): ${item.msg}`;
      });
  }

  // The reviews a task's error names, as model.check_review writes them: reviews[i].
  function namedReviews(reviews, error) {
    const found = [...String(error.message).matchAll(/reviews\[(\d+)\]/g)];
    return found.map((match) => {
      const index = Number(match[1]);
      return `Review ${index + 1} (“${excerpt(reviews[index] ?? "")}”): ${error.type}: ${error.message}`;
    });
  }

  class Refused extends Error {
    constructor(message, items) {
      super(message);
      this.items = items;
    }
  }

  async function send(reviews, pace) {
    // Paced, every review is its own chunk; otherwise up to 20 progress steps in all.
    const chunkSize = pace ? 1 : Math.max(1, Math.ceil(reviews.length / 20));
    let response;
    try {
      response = await fetch(`${tasksPrefix}/polarity:batch`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ reviews, chunk_size: chunkSize, pace }),
      });
    } catch (error) {
      throw new Error(`Could not reach the service: ${error.message}`);
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      throw new Refused(
        `The service refused the reviews (HTTP ${response.status}): ${describe(body)}`,
        refusedReviews(reviews, body),
      );
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
        run.endedAt = performance.now();
        updateStats();
        settle();
      };
      const read = (event) => {
        received += 1;
        updates.textContent = `${plural(received, "update")} received from the event stream.`;
        const info = JSON.parse(event.data);
        document.body.dataset.state = info.state;
        if (run.startedAt === null && !["queued", "unknown"].includes(info.state)) {
          run.startedAt = performance.now();
        }
        return info;
      };
      const onStatus = (event) => {
        const info = read(event);
        if (info.progress) {
          const message = readMessage(info.progress.message);
          setProgress(info.progress.percent, `${message.text}.`);
          const before = run.scored;
          if (Array.isArray(message.scores)) applyScores(message.first || 0, message.scores, "progress");
          const found = run.scored - before;
          log(found ? `${message.text} (${plural(found, "new score")} shown)` : message.text);
        } else if (info.state === "retrying") {
          const why = info.error ? `${info.error.type}: ${info.error.message}` : "an error";
          status.textContent = `Retrying after ${why}.`;
          log(`retrying (retry ${info.retries}) after ${why}`);
        } else {
          status.textContent = WAITING[info.state] || info.state;
          log(LOGGED[info.state] || info.state);
        }
        updateStats();
      };
      for (const name of STATES) source.addEventListener(name, onStatus);
      source.addEventListener("succeeded", (event) => {
        const info = read(event);
        log(`succeeded: ${Array.isArray(info.result) ? plural(info.result.length, "score") : "a result"} in the result`);
        finish(() => resolve(info.result));
      });
      source.addEventListener("failed", (event) => {
        const info = read(event);
        const error = info.error || { type: "Error", message: "no error details" };
        log(`failed: ${error.type}: ${error.message}`);
        finish(() =>
          reject(new Refused(`Scoring failed: ${error.type}: ${error.message}`, namedReviews(run.reviews, error))),
        );
      });
      source.addEventListener("revoked", (event) => {
        read(event);
        log("revoked");
        finish(() => reject(new Error("The task was revoked before it finished.")));
      });
      source.addEventListener("unknown", (event) => {
        read(event);
        log("no record of the task");
        finish(() => reject(new Error("The service has no record of this task (expired?).")));
      });
      source.onerror = () => {
        if (!finished) {
          log("the event stream was lost");
          finish(() => reject(new Error("Lost the event stream before the task finished.")));
        }
      };
    });
  }

  // The result holds every score: it fills the rows that missed events left pending.
  function showScores(scores) {
    if (!Array.isArray(scores) || scores.length !== run.reviews.length) {
      throw new Error(`Expected ${run.reviews.length} scores, got ${JSON.stringify(scores)}.`);
    }
    applyScores(0, scores, "result");
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const reviews = textarea.value
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter((line) => line.length > 0);
    run = null;
    reset();
    if (reviews.length === 0) {
      setProgress(0, "Nothing sent.");
      document.body.dataset.state = "idle";
      showError("Paste at least one review, one per line.");
      return;
    }
    const pace = paceBox.checked
      ? Math.round(Math.min(MAX_PACE, PACED_SECONDS / reviews.length) * 1000) / 1000
      : 0;
    run = { reviews, pace, rows: [], scored: 0, sentAt: performance.now(), startedAt: null, endedAt: null };
    const ticker = setInterval(updateStats, 100);
    button.disabled = true;
    log(`sending ${plural(reviews.length, "review")} as one polarity:batch task${pace ? `, paced at ${pace * 1000} ms a review` : ""}`);
    try {
      const accepted = await send(reviews, pace);
      log(`accepted as task ${accepted.task_id}`);
      status.textContent = "Sent; waiting for the first update.";
      const scores = await follow(accepted);
      showScores(scores);
      setProgress(100, "Done.");
    } catch (error) {
      if (run.endedAt === null) run.endedAt = performance.now();
      status.textContent = "Stopped.";
      showError(error.message);
      showFailures(error instanceof Refused ? error.items : []);
    } finally {
      clearInterval(ticker);
      updateStats();
      button.disabled = false;
    }
  });
})();
