// Flow page of the onboarding simulator. Each step posts to the page's own
// routes (same origin), /flow/{id}/status and /flow/{id}/score, with the
// interview's flow key from the page's URL; the gateway then reads the
// statuses upstream.
"use strict";

(function () {
  const root = document.getElementById("flow");
  if (!root || !root.dataset.interview) {
    return;
  }
  // Relative to the page, /flow/{id}?key=...: /flow/{id}/status and /score.
  const api = encodeURIComponent(root.dataset.interview);
  const key = root.dataset.key || "";
  const delay = Number(root.dataset.stepDelayMs) || 1500;
  const auto = document.getElementById("auto");
  const statusOut = document.getElementById("status");
  const errorBox = document.getElementById("error");

  // steps[n] is step n: its button and the statuses it sets, in order
  // (data-order: one list per step, as the simulator's order wants them).
  // Step 4 sets the score first, then ONBOARDING_FINISHED; step 5 is "done".
  const order = JSON.parse(root.dataset.order || "[]");
  const buttons = ["capture-id", "confirm-id", "take-selfie", "finish"];
  const steps = [null].concat(buttons.map(function (button, i) {
    return { button: button, statuses: order[i] || [] };
  }));
  // A step that sets several statuses sets them this far apart, so each
  // is its own change upstream.
  const statusGap = 300;
  let step = Number(root.dataset.step) || 1;
  let busy = false;
  let timer = null;

  async function post(path, body) {
    const res = await fetch(api + path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Flow-Key": key },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    if (!res.ok) {
      const err = new Error("HTTP " + res.status);
      // 410: the flow timed out. Retrying cannot help: say so, and stop.
      err.gone = res.status === 410;
      throw err;
    }
  }

  function outcome() {
    const checked = document.querySelector("input[name=outcome]:checked");
    return checked ? checked.value : "OK";
  }

  function setError(msg) {
    errorBox.textContent = msg;
    errorBox.hidden = msg === "";
  }

  function show(next, status) {
    step = next;
    statusOut.textContent = status;
    for (const section of document.querySelectorAll("section[data-step]")) {
      section.hidden = Number(section.dataset.step) !== step;
    }
    for (const li of document.querySelectorAll("#steps li")) {
      const n = Number(li.dataset.step);
      li.classList.toggle("complete", n < step);
      if (n === step) {
        li.setAttribute("aria-current", "step");
      } else {
        li.removeAttribute("aria-current");
      }
    }
    if (step === 5) {
      document.getElementById("done").focus();
    }
  }

  async function advance() {
    if (busy || step > 4) {
      return;
    }
    busy = true;
    setError("");
    const current = steps[step];
    try {
      if (step === 4) {
        await post("/score", { status: outcome() });
      }
      let last = "";
      for (const [i, status] of current.statuses.entries()) {
        if (i > 0) {
          await new Promise(function (resolve) { setTimeout(resolve, statusGap); });
        }
        await post("/status", { onboardingStatus: status });
        last = status;
      }
      show(step + 1, last);
    } catch (err) {
      if (err.gone) {
        auto.checked = false;
        setError("This onboarding session expired before it was finished. Start again from the page that sent you here.");
      } else {
        setError("Could not save this step (" + err.message + "). Try again.");
      }
    } finally {
      busy = false;
      schedule();
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = null;
    if (auto.checked && step <= 4) {
      timer = setTimeout(advance, delay);
    }
  }

  steps.forEach(function (s, n) {
    if (!s) {
      return;
    }
    document.getElementById(s.button).addEventListener("click", function () {
      if (n === step) {
        clearTimeout(timer);
        advance();
      }
    });
  });
  auto.addEventListener("change", schedule);
  schedule();
})();
