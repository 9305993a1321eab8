// Runs web/static/flow.js against a minimal DOM that mirrors web/flow.html,
// with fetch going to the simulator under test.
// Usage: node flow_harness.js PAGE_URL (the onboarding URL, key included) STEP STEP_DELAY_MS click|auto OUTCOME ORDER_JSON
// Prints each status the page shows, one a line, and exits 0 when #done shows.
"use strict";

const fs = require("fs");
const path = require("path");
const vm = require("vm");

const [pageURL, startStep, delayMS, mode, outcome, order] = process.argv.slice(2);
const interview = new URL(pageURL).pathname.split("/").pop();
const key = new URL(pageURL).searchParams.get("key") || "";

function element(id, props) {
  const attrs = {};
  const listeners = {};
  const classes = new Set();
  return Object.assign({
    id,
    hidden: false,
    textContent: "",
    dataset: {},
    classList: { toggle: (c, on) => (on ? classes.add(c) : classes.delete(c)) },
    setAttribute: (k, v) => { attrs[k] = v; },
    removeAttribute: (k) => { delete attrs[k]; },
    addEventListener: (type, fn) => { (listeners[type] = listeners[type] || []).push(fn); },
    dispatch: (type) => (listeners[type] || []).forEach((fn) => fn({ type })),
    focus: () => {},
  }, props);
}

const byId = {};
const add = (el) => { byId[el.id] = el; return el; };
add(element("flow", { dataset: { interview, key, step: startStep, stepDelayMs: delayMS, order } }));
add(element("auto", { checked: mode === "auto" }));
add(element("status", { textContent: "" }));
add(element("error", { hidden: true }));
["capture-id", "confirm-id", "take-selfie", "finish"].forEach((id) => add(element(id)));
const sections = [1, 2, 3, 4, 5].map((n) =>
  add(element(n === 5 ? "done" : "step-" + n, { hidden: String(n) !== startStep, dataset: { step: String(n) } })));
const items = [1, 2, 3, 4].map((n) => element("", { dataset: { step: String(n) } }));
const radios = ["OK", "WARN", "FAIL"].map((v) => element("", { value: v, checked: v === outcome }));

const document = {
  getElementById: (id) => byId[id] || null,
  querySelector: (sel) => (sel === "input[name=outcome]:checked" ? radios.find((r) => r.checked) || null : null),
  querySelectorAll: (sel) => ({ "section[data-step]": sections, "#steps li": items })[sel] || [],
};

const ctx = vm.createContext({
  document,
  setTimeout, clearTimeout, console, Number, JSON, Error, encodeURIComponent,
  fetch: (u, opts) => fetch(new URL(u, pageURL), opts),
});
vm.runInContext(fs.readFileSync(path.join(__dirname, "..", "web", "static", "flow.js"), "utf8"), ctx);

const buttons = ["capture-id", "confirm-id", "take-selfie", "finish"];
let last = "";
let clicked = -1;
const deadline = Date.now() + 10000;
(function tick() {
  const status = byId.status.textContent;
  if (status !== last) {
    last = status;
    console.log(status);
  }
  if (!byId.error.hidden) {
    console.error("page error: " + byId.error.textContent);
    process.exit(1);
  }
  if (!byId.done.hidden) {
    process.exit(0);
  }
  if (Date.now() > deadline) {
    console.error("timed out at status " + status);
    process.exit(1);
  }
  if (mode === "click") {
    // Click the button of the step on show, once per step.
    const n = sections.findIndex((s) => !s.hidden);
    if (n >= 0 && n < 4 && clicked !== n) {
      clicked = n;
      byId[buttons[n]].dispatch("click");
    }
  }
  setTimeout(tick, 2);
})();
