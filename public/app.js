// app.js drives the onboarding page served by pushgate at "/": it shows
// the onboarding flow in an iframe, follows its status with the browser
// client (client.js: Server-Sent Events, or polling when they are
// unavailable) and on ONBOARDING_FINISHED closes the iframe and shows the
// verdict.
//
// A load of the page does what this tab's stored record says, so that a
// reload never pays for another upstream session:
//   nothing stored   -> start a session: the only one the page starts by itself
//   flow             -> resume the flow
//   finished         -> the verdict again, fetched only if it was not known yet
//   expired or gone  -> say so, with a button that starts a new session
// Any other session starts from a click ("Start a new verification").
//
// The page runs under "script-src 'self'; style-src 'self'" (no inline
// script or style, no eval) as an ES module: its state stays in module scope.
import { watchOnboarding, fetchVerdict } from './client.js';

// sessionStorage key of this tab's interview: {interviewId, url, state,
// verdict?}, state one of STATES, verdict one of VERDICTS once known (an
// UNKNOWN score is not kept: a reload asks again).
const STORAGE_KEY = 'pushgate.session';
const STATES = ['flow', 'finished', 'expired', 'gone'];
const VERDICTS = ['OK', 'WARN', 'FAIL'];

const WAITING = 'UNKNOWN'; // before the first step: its chip marks no step done, so it has no tick
const FINISHED = 'ONBOARDING_FINISHED'; // its chip shows the verdict once known

// Maps, not object literals, so a status such as "constructor" can never
// pick up an Object.prototype member. The upstream sends statuses in no
// fixed order (post-processing may end after the selfie check): each gets
// its entry as it arrives.
const LABELS = new Map([
  ['UNKNOWN', 'Waiting for you to start'],
  ['ID_VALIDATION_FINISHED', 'ID captured'],
  ['ID_VALIDATION_FINISHED_SECOND_ID', 'Second ID captured'],
  ['GOVERNMENT_VALIDATION_FINISHED', 'ID checked with the issuer'],
  ['POST_PROCESSING_FINISHED', 'ID checked'],
  ['FACE_VALIDATION_FINISHED', 'Selfie checked'],
  ['ONBOARDING_FINISHED', 'Complete'], // neutral until the verdict is known (OUTCOMES)
  ['MANUAL_REVIEW_APPROVED', 'Reviewed: approved'],
  ['MANUAL_REVIEW_REJECTED', 'Reviewed: not approved'],
]);
// The device features the flow may use, and the origins that may use them,
// as the gateway grants them (-iframe-permissions, -flow-origin). Without
// origins, a feature goes to the origin of the iframe's src alone.
const IFRAME_ALLOW = document.body.dataset.iframeAllow || 'camera; microphone; geolocation; accelerometer; gyroscope';
// Each verdict's words: on the final chip, and in #result.
const OUTCOMES = new Map([
  ['OK', { chip: 'Verified', title: "You're verified", detail: 'Thank you, your identity has been confirmed.' }],
  ['WARN', { chip: 'Needs review', title: 'We need to review your verification', detail: 'We will let you know once it has been checked.' }],
  ['FAIL', { chip: 'Not verified', title: "We couldn't verify you", detail: 'Please contact support if you think this is a mistake.' }],
  ['UNKNOWN', { chip: 'Result pending', title: 'Result not available yet', detail: 'Your verification is complete, but its result is not ready.' }],
]);

const SCORE_ATTEMPTS = 5; // fetch-score answers 409 while the upstream still settles
const SCORE_RETRY_MS = 1500;
const REQUEST_TIMEOUT_MS = 15000;
const SESSION_GONE = [401, 403, 404]; // the gateway no longer knows this browser's session
const SESSION_ENDED = 410; // the upstream forgot the session (expired, or deleted)
const EXPIRED_MESSAGE = 'This verification session has expired.';
const START_ELSEWHERE_MESSAGE = 'Verification is started from the site that sent you here. Please go back to it and start again.';

const ui = {
  body: document.body,
  app: document.getElementById('app'),
  progress: document.getElementById('progress'),
  notice: document.getElementById('notice'),
  error: document.getElementById('error'),
  errorMessage: document.getElementById('error-message'),
  retry: document.getElementById('retry'),
  result: document.getElementById('result'),
  resultTitle: document.getElementById('result-title'),
  resultDetail: document.getElementById('result-detail'),
  startOver: document.getElementById('start-over'),
};

// current is the interview the page shows, {interviewId, url, watch}, or
// null. Each one gets its own object so that late callbacks of an
// abandoned interview (a poll in flight when the user starts again) can
// tell they are stale and do nothing.
let current = null;
// retryAction is what #retry does; set with each error shown.
let retryAction = null;

// ---------------------------------------------------------------- errors

// guarded wraps event handlers and timers so that a bug turns into a
// message on the page instead of an uncaught exception and a dead page.
function guarded(fn) {
  return function (...args) {
    try {
      const result = fn.apply(this, args);
      if (result && typeof result.catch === 'function') result.catch(unexpected);
    } catch (err) {
      unexpected(err);
    }
  };
}

function unexpected(err) {
  console.error('pushgate: unexpected error', err);
  showError('Something went wrong on this page. Please start again.', 'Start again', restart);
}

// ------------------------------------------------------------------ HTTP

// getJSON fetches a same-origin gateway path (the session cookie goes
// along) and returns {ok, status, body}; body is null when the answer is
// not JSON. It throws only when no answer came (network down, timeout).
async function getJSON(path) {
  const init = { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } };
  if (typeof AbortSignal === 'function' && typeof AbortSignal.timeout === 'function') {
    init.signal = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
  }
  const response = await fetch(path, init);
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    // Empty or non-JSON body, e.g. a proxy's HTML error page.
  }
  return { ok: response.ok, status: response.status, body };
}

// reasonOf words a failed answer, preferring the gateway's {"error"} text.
function reasonOf(res) {
  const text = res.body && typeof res.body.error === 'string' ? res.body.error.trim() : '';
  if (text) return text;
  if (res.status === 429) return 'too many attempts, please wait a moment';
  if (res.status >= 502 && res.status <= 504) return 'the verification service is unavailable';
  return 'error ' + res.status;
}

// reasonOfException words a request that got no answer at all.
function reasonOfException(err) {
  if (err && (err.name === 'TimeoutError' || err.name === 'AbortError')) return 'the server took too long to answer';
  return 'the server could not be reached';
}

// flowURL returns raw as an absolute http(s) URL, or null: the iframe must
// never be pointed at a javascript: or data: URL, whatever the source.
function flowURL(raw) {
  if (typeof raw !== 'string' || !raw) return null;
  try {
    const url = new URL(raw, window.location.href);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
  } catch (_) {
    return null;
  }
}

// --------------------------------------------------------------- storage
// sessionStorage may be unavailable (privacy settings, sandboxing): the
// page then still works, but a reload cannot tell what came before.

// loadSaved returns this tab's record, or null when it has none.
function loadSaved() {
  try {
    const saved = JSON.parse(window.sessionStorage.getItem(STORAGE_KEY) || 'null');
    if (!saved || typeof saved.interviewId !== 'string' || !saved.interviewId || typeof saved.url !== 'string') return null;
    const state = STATES.includes(saved.state) ? saved.state : 'flow'; // a record without one is a flow's
    return { interviewId: saved.interviewId, url: saved.url, state, verdict: VERDICTS.includes(saved.verdict) ? saved.verdict : null };
  } catch (_) {
    return null; // no sessionStorage, or not JSON
  }
}

// save records run's interview in state, with its verdict when known.
function save(run, state, verdict) {
  try {
    const record = { interviewId: run.interviewId, url: run.url, state, verdict: VERDICTS.includes(verdict) ? verdict : undefined };
    window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify(record));
  } catch (_) {
    // A reload will not know; nothing else changes.
  }
}

// -------------------------------------------------------------------- UI

// showNotice puts text in #notice; '' hides it.
function showNotice(text) {
  ui.notice.textContent = text;
  ui.notice.hidden = !text;
}

// showError puts message in #error with #retry labelled buttonLabel; a
// click hides the error and runs action. Without an action, no button.
function showError(message, buttonLabel, action) {
  showNotice('');
  retryAction = action;
  ui.retry.textContent = buttonLabel || '';
  ui.retry.hidden = !action;
  ui.error.hidden = false;
  // Set after unhiding so screen readers announce the alert's new text.
  ui.errorMessage.textContent = message;
}

function clearError() {
  retryAction = null;
  ui.error.hidden = true;
  ui.errorMessage.textContent = '';
}

// showResult shows the verdict in #result, with the button to start a new
// verification, and on the final chip.
function showResult(scoreStatus) {
  const outcome = OUTCOMES.has(scoreStatus) ? scoreStatus : 'UNKNOWN';
  const text = OUTCOMES.get(outcome);
  ui.result.dataset.outcome = outcome;
  ui.resultTitle.textContent = text.title;
  ui.resultDetail.textContent = text.detail;
  ui.result.hidden = false;
  const chip = ui.progress.querySelector('li[data-status="' + FINISHED + '"]');
  if (chip) {
    chip.dataset.verdict = outcome; // style.css colours it
    chip.textContent = text.chip;
  }
}

// renderStatus shows status in #progress, once per status in order of
// first arrival, as the current step, scrolled into view (the steps are one
// row that scrolls sideways); the waiting chip hides behind any other.
function renderStatus(status) {
  const items = Array.from(ui.progress.children);
  let item = items.find((li) => li.dataset.status === status);
  if (!item) {
    item = document.createElement('li');
    item.className = 'progress__step';
    item.dataset.status = status;
    item.textContent = LABELS.get(status) || wordsOf(status);
    ui.progress.appendChild(item);
    items.push(item);
  }
  for (const li of items) {
    const isCurrent = li === item;
    li.classList.toggle('is-current', isCurrent);
    if (isCurrent) li.setAttribute('aria-current', 'step');
    else li.removeAttribute('aria-current');
    li.hidden = li.dataset.status === WAITING && !isCurrent;
  }
  item.scrollIntoView({ block: 'nearest', inline: 'nearest' });
}

// wordsOf words a status the page does not know: SOME_NEW_STEP as "Some new step".
function wordsOf(status) {
  return status.charAt(0) + status.slice(1).toLowerCase().replace(/_/g, ' ');
}

// createIframe builds the flow's iframe as the integration guide does.
function createIframe(url) {
  removeIframe();
  const frame = document.createElement('iframe');
  frame.id = 'app-iframe';
  frame.title = 'Identity verification flow';
  frame.width = '100%';
  frame.height = '100%';
  frame.allowUserMedia = true; // legacy property; browsers today honour the allow attribute
  frame.setAttribute('frameborder', '0');
  frame.setAttribute('allow', IFRAME_ALLOW); // each feature for the flow origins only
  frame.src = url;
  ui.app.appendChild(frame);
}

// removeIframe removes the iframe through its parent node: only that
// really unloads the flow (and releases camera and microphone).
function removeIframe() {
  const frame = document.getElementById('app-iframe');
  if (frame && frame.parentNode) frame.parentNode.removeChild(frame);
}

function resetView() {
  if (current) closeWatch(current);
  current = null;
  removeIframe();
  ui.progress.replaceChildren();
  ui.result.hidden = true;
  delete ui.result.dataset.outcome;
  delete ui.body.dataset.mode;
  clearError();
  showNotice('');
}

// ------------------------------------------------------------------ flow

// start shows what this tab's stored interview calls for (see the top of
// this file); only with nothing stored does it start a session.
function start() {
  const saved = loadSaved();
  if (!saved) return createSession();
  console.info('pushgate: back to interview', saved.interviewId, saved.state);
  const url = flowURL(saved.url);
  if (saved.state === 'flow' && url) return follow(saved.interviewId, url);
  const run = { interviewId: saved.interviewId, url: saved.url, watch: null };
  current = run;
  if (saved.state === 'finished') return finish(run, saved.verdict);
  if (saved.state === 'expired') return sessionEnded(run);
  return sessionGone(run, '');
}

// restart is the user's "start again": it forgets this tab's interview.
function restart() {
  try {
    window.sessionStorage.removeItem(STORAGE_KEY);
  } catch (_) {
    // Nothing was stored.
  }
  resetView();
  return createSession();
}

// createSession asks the gateway for a new onboarding session; the token
// comes back as an HttpOnly cookie, so the page never stores it.
async function createSession() {
  showNotice('Starting the verification…');
  let res;
  try {
    const language = navigator.language ? '?language=' + encodeURIComponent(navigator.language) : '';
    res = await getJSON('/onboarding-url' + language);
  } catch (err) {
    startFailed(reasonOfException(err));
    return;
  }
  if (!res.ok) {
    // 404 is -public-sessions=false (code backend_sessions_only) here, or
    // a gateway without the route: no button, as trying again cannot work.
    if (res.status === 404) showError(START_ELSEWHERE_MESSAGE, '', null);
    else startFailed(reasonOf(res));
    return;
  }
  const body = res.body || {};
  const url = flowURL(body.url);
  if (!url || typeof body.interviewId !== 'string' || !body.interviewId) {
    startFailed('the server sent an incomplete answer');
    return;
  }
  follow(body.interviewId, url);
}

function startFailed(reason) {
  showError("We couldn't start the verification (" + reason + '). Please try again.', 'Try again', createSession);
}

// follow shows the flow for interviewId and watches its status with the
// browser client. Without a token it uses the interview's cookie, which
// /onboarding-url set: the page never holds the token.
function follow(interviewId, url) {
  const run = { interviewId, url, watch: null };
  current = run;
  save(run, 'flow');
  showNotice('');
  createIframe(url);
  const mine = (fn) => guarded((...args) => (run === current ? fn(...args) : undefined));
  run.watch = watchOnboarding({
    interviewId,
    onStatus: mine((status) => renderStatus(status)),
    onFinished: mine(() => finish(run, null)),
    onEnd: mine(() => sessionEnded(run)),
    onError: mine((err) => sessionGone(run, err.message)),
    // <body data-mode> tells which transport delivers statuses, "sse" or
    // "polling"; it keeps its last value once the interview is done.
    onTransport: mine((transport) => (ui.body.dataset.mode = transport === 'polling' ? 'polling' : 'sse')),
  });
}

function closeWatch(run) {
  if (run.watch) run.watch.close();
  run.watch = null;
}

// closeFlow ends run's flow on the page (the watch and the iframe go) and
// records how it ended: state, and the verdict when known.
function closeFlow(run, state, verdict) {
  closeWatch(run);
  removeIframe();
  save(run, state, verdict);
}

// finish shows the result of the interview's flow. A verdict already
// known (this tab got it before a reload) is shown at once; else it is
// fetched.
function finish(run, verdict) {
  closeFlow(run, 'finished', verdict);
  if (!ui.progress.children.length) renderStatus(FINISHED); // after a reload
  if (verdict) showResult(verdict);
  else loadScore(run).catch(unexpected);
}

// loadScore shows the verdict. Just after ONBOARDING_FINISHED the gateway
// may still answer 409 for a moment; the client retries that a few times
// before the page says the result is not ready.
async function loadScore(run) {
  showNotice('Verification complete. Getting your result…');
  let verdict;
  try {
    verdict = await fetchVerdict({ interviewId: run.interviewId, attempts: SCORE_ATTEMPTS, retryDelay: SCORE_RETRY_MS });
  } catch (err) {
    if (run === current) scoreRefused(run, err);
    return;
  }
  if (run !== current) return;
  showNotice('');
  save(run, 'finished', verdict.status);
  showResult(verdict.status);
}

// scoreRefused words a verdict the gateway did not give.
function scoreRefused(run, err) {
  showNotice('');
  const status = err && err.name === 'GatewayError' ? err.status : 0;
  if (status === 409) {
    showResult('UNKNOWN');
    showError("Your result isn't ready yet. Please check again in a moment.", 'Check again', () => loadScore(run));
  } else if (status === SESSION_ENDED) {
    sessionEnded(run);
  } else if (SESSION_GONE.includes(status)) {
    sessionGone(run, err.message);
  } else {
    const reason = status ? reasonOf({ status, body: { error: err.message } }) : reasonOfException(err);
    showError("We couldn't get your verification result (" + reason + '). Please try again.', 'Try again', () => loadScore(run));
  }
}

// sessionGone handles a gateway that no longer knows the session (expired
// cookie, unknown interview): nothing on this page can recover it. After
// a reload the reason is no longer known ('').
function sessionGone(run, reason) {
  closeFlow(run, 'gone');
  const why = reason ? ' (' + reason + ')' : '';
  showError('Your verification session has ended' + why + '. Please start again.', 'Start again', restart);
}

// sessionEnded handles a session the upstream forgot (its event "end",
// or 410 to a poll): the flow cannot go on; a new session can.
function sessionEnded(run) {
  closeFlow(run, 'expired');
  showError(EXPIRED_MESSAGE, 'Start a new verification', restart);
}

ui.retry.addEventListener('click', guarded(() => {
  const action = retryAction;
  clearError(); // hides #retry at once, so a double click cannot run action twice
  return action ? action() : undefined;
}));
// restart hides #result, and so #start-over, at once.
ui.startOver.addEventListener('click', guarded(restart));

// The script is deferred, so the DOM above is ready.
guarded(start)();
