// app.js drives the onboarding page served by pushgate at "/".
//
// Flow: get (or resume) an onboarding session -> show the flow in an iframe ->
// follow its status with the browser client (client.js: Server-Sent Events,
// or polling when they are unavailable) -> on ONBOARDING_FINISHED close the
// iframe and show the score's outcome.
//
// The page runs under "script-src 'self'; style-src 'self'": no inline
// script, no inline style, no eval. It is an ES module: its state stays in
// module scope.
import { watchOnboarding, fetchVerdict } from './client.js';

// sessionStorage key of {interviewId, url}: a reload resumes the same
// interview instead of paying for a new upstream session.
const STORAGE_KEY = 'pushgate.session';

// Maps, not object literals, so a status such as "constructor" can never
// pick up an Object.prototype member.
// The upstream sends statuses in no fixed order (post-processing may end
// after the selfie check): each gets its entry as it arrives.
const LABELS = new Map([
  ['UNKNOWN', 'Waiting for you to start'],
  ['ID_VALIDATION_FINISHED', 'ID captured'],
  ['ID_VALIDATION_FINISHED_SECOND_ID', 'Second ID captured'],
  ['GOVERNMENT_VALIDATION_FINISHED', 'ID checked with the issuer'],
  ['POST_PROCESSING_FINISHED', 'ID checked'],
  ['FACE_VALIDATION_FINISHED', 'Selfie checked'],
  ['ONBOARDING_FINISHED', 'Verification complete'],
  ['MANUAL_REVIEW_APPROVED', 'Reviewed: approved'],
  ['MANUAL_REVIEW_REJECTED', 'Reviewed: not approved'],
]);
// The device features the flow may use, and the origins that may use them,
// as the gateway grants them (-iframe-permissions, -flow-origin). Without
// origins, a feature goes to the origin of the iframe's src alone.
const IFRAME_ALLOW = document.body.dataset.iframeAllow || 'camera; microphone; geolocation; accelerometer; gyroscope';
const OUTCOMES = new Map([
  ['OK', { title: "You're verified", detail: 'Thank you, your identity has been confirmed.' }],
  ['WARN', { title: 'We need to review your verification', detail: 'We will let you know once it has been checked.' }],
  ['FAIL', { title: "We couldn't verify you", detail: 'Please contact support if you think this is a mistake.' }],
  ['UNKNOWN', { title: 'Result not available yet', detail: 'Your verification is complete, but its result is not ready.' }],
]);

const SCORE_ATTEMPTS = 5; // fetch-score answers 409 while the upstream still settles
const SCORE_RETRY_MS = 1500;
const REQUEST_TIMEOUT_MS = 15000;
const SESSION_GONE = [401, 403, 404]; // the gateway no longer knows this browser's session
const SESSION_ENDED = 410; // the upstream forgot the session (expired, or deleted)
const EXPIRED_MESSAGE = 'This verification session has expired.';

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
};

// current is the interview the page follows, or null. Each one gets its own
// object so that late callbacks of an abandoned interview (a poll in flight
// when the user starts again) can tell they are stale and do nothing.
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
// page then still works, it just cannot resume after a reload.

function loadSavedSession() {
  let saved = null;
  try {
    saved = JSON.parse(window.sessionStorage.getItem(STORAGE_KEY) || 'null');
  } catch (_) {
    return null;
  }
  const url = saved && flowURL(saved.url);
  if (!url || typeof saved.interviewId !== 'string' || !saved.interviewId) return null;
  return { interviewId: saved.interviewId, url };
}

function saveSession(interviewId, url) {
  try {
    window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ interviewId, url }));
  } catch (_) {
    // Not resumable after a reload; nothing else changes.
  }
}

function forgetSession() {
  try {
    window.sessionStorage.removeItem(STORAGE_KEY);
  } catch (_) {
    // Nothing was stored.
  }
}

// -------------------------------------------------------------------- UI

function showNotice(text) {
  ui.notice.textContent = text;
  ui.notice.hidden = false;
}

function hideNotice() {
  ui.notice.hidden = true;
  ui.notice.textContent = '';
}

// showError puts message in #error with #retry labelled buttonLabel; a
// click hides the error and runs action.
function showError(message, buttonLabel, action) {
  hideNotice();
  retryAction = action;
  ui.retry.textContent = buttonLabel;
  ui.error.hidden = false;
  // Set after unhiding so screen readers announce the alert's new text.
  ui.errorMessage.textContent = message;
}

function clearError() {
  retryAction = null;
  ui.error.hidden = true;
  ui.errorMessage.textContent = '';
}

function showResult(scoreStatus) {
  const outcome = OUTCOMES.has(scoreStatus) ? scoreStatus : 'UNKNOWN';
  const text = OUTCOMES.get(outcome);
  ui.result.dataset.outcome = outcome;
  ui.resultTitle.textContent = text.title;
  ui.resultDetail.textContent = text.detail;
  ui.result.hidden = false;
}

// setMode tells (on <body data-mode>) which transport delivers statuses:
// "sse" or "polling". It keeps its last value once the interview is done.
function setMode(mode) {
  ui.body.dataset.mode = mode;
}

// renderStatus shows status in #progress, once per status in order of
// first arrival, and marks it as the current step.
function renderStatus(status) {
  const items = Array.from(ui.progress.children);
  let item = items.find((li) => li.dataset.status === status);
  if (!item) {
    item = document.createElement('li');
    item.className = 'progress__step';
    item.dataset.status = status;
    item.textContent = LABELS.get(status) || labelOf(status);
    ui.progress.appendChild(item);
    items.push(item);
  }
  for (const li of items) {
    const isCurrent = li === item;
    li.classList.toggle('is-current', isCurrent);
    if (isCurrent) li.setAttribute('aria-current', 'step');
    else li.removeAttribute('aria-current');
  }
}

// labelOf words a status the page does not know, e.g. SOME_NEW_STEP as
// "Some new step".
function labelOf(status) {
  const words = status.toLowerCase().replace(/_/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
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
  hideNotice();
}

// ------------------------------------------------------------------ flow

function start() {
  const saved = loadSavedSession();
  if (saved) {
    console.info('pushgate: resuming interview', saved.interviewId);
    follow(saved.interviewId, saved.url);
    return undefined;
  }
  return createSession();
}

function restart() {
  forgetSession();
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
    startFailed(reasonOf(res));
    return;
  }
  const body = res.body || {};
  const url = flowURL(body.url);
  if (!url || typeof body.interviewId !== 'string' || !body.interviewId) {
    startFailed('the server sent an incomplete answer');
    return;
  }
  saveSession(body.interviewId, url);
  follow(body.interviewId, url);
}

function startFailed(reason) {
  showError("We couldn't start the verification (" + reason + '). Please try again.', 'Try again', createSession);
}

// follow shows the flow for interviewId and watches its status with the
// browser client. Without a token it uses the interview's cookie, which
// /onboarding-url set: the page never holds the token.
function follow(interviewId, url) {
  const run = { interviewId, watch: null };
  current = run;
  hideNotice();
  createIframe(url);
  const mine = (fn) => guarded((...args) => (run === current ? fn(...args) : undefined));
  run.watch = watchOnboarding({
    interviewId,
    onStatus: mine((status) => renderStatus(status)),
    onFinished: mine(() => finish(run)),
    onEnd: mine(() => sessionEnded(run)),
    onError: mine((err) => sessionGone(run, err.message)),
    onTransport: mine((transport) => setMode(transport === 'polling' ? 'polling' : 'sse')),
  });
}

function closeWatch(run) {
  if (run.watch) run.watch.close();
  run.watch = null;
}

// finish ends the interview's flow: the iframe goes, the result comes.
function finish(run) {
  closeWatch(run);
  removeIframe();
  forgetSession();
  loadScore(run).catch(unexpected);
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
  hideNotice();
  showResult(verdict.status);
}

// scoreRefused words a verdict the gateway did not give.
function scoreRefused(run, err) {
  hideNotice();
  const status = err && err.name === 'GatewayError' ? err.status : 0;
  if (status === 409) {
    showResult('UNKNOWN');
    showError("Your result isn't ready yet. Please check again in a moment.", 'Check again', () => loadScore(run));
  } else if (status === SESSION_ENDED) {
    sessionEnded(run);
  } else if (SESSION_GONE.includes(status)) {
    sessionGone(run, err.message);
  } else {
    scoreFailed(run, status ? reasonOf({ status, body: { error: err.message } }) : reasonOfException(err));
  }
}

function scoreFailed(run, reason) {
  showError("We couldn't get your verification result (" + reason + '). Please try again.', 'Try again', () => loadScore(run));
}

// sessionGone handles a gateway that no longer knows the session (expired
// cookie, unknown interview): nothing on this page can recover it.
function sessionGone(run, reason) {
  closeWatch(run);
  removeIframe();
  forgetSession();
  showError('Your verification session has ended (' + reason + '). Please start again.', 'Start again', restart);
}

// sessionEnded handles a session the upstream forgot (its event "end",
// or 410 to a poll): the flow cannot go on; a new session can.
function sessionEnded(run) {
  closeWatch(run);
  removeIframe();
  forgetSession();
  showError(EXPIRED_MESSAGE, 'Start a new verification', restart);
}

ui.retry.addEventListener('click', guarded(() => {
  const action = retryAction;
  clearError(); // hides #retry at once, so a double click cannot run action twice
  return action ? action() : undefined;
}));

// The script is deferred, so the DOM above is ready.
guarded(start)();
