// app.js drives the onboarding page served by pushgate at "/".
//
// Flow: get (or resume) an onboarding session -> show the flow in an iframe ->
// follow its status over Server-Sent Events (or poll when SSE is unavailable
// or keeps failing) -> on ONBOARDING_FINISHED close the iframe and show the
// score's outcome.
//
// The page runs under "script-src 'self'; style-src 'self'": no inline
// script, no inline style, no eval. All state stays inside this IIFE.
(function () {
  'use strict';

  // sessionStorage key of {interviewId, url}: a reload resumes the same
  // interview instead of paying for a new upstream session.
  const STORAGE_KEY = 'pushgate.session';
  const FINISHED = 'ONBOARDING_FINISHED';
  // The flow is over on ONBOARDING_FINISHED, or on a manual review decided
  // after it (a page opened late may see only that).
  const FINAL = new Set([FINISHED, 'MANUAL_REVIEW_APPROVED', 'MANUAL_REVIEW_REJECTED']);

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
    [FINISHED, 'Verification complete'],
    ['MANUAL_REVIEW_APPROVED', 'Reviewed: approved'],
    ['MANUAL_REVIEW_REJECTED', 'Reviewed: not approved'],
  ]);
  // The device features the flow may use, as the gateway grants them.
  const IFRAME_ALLOW = document.body.dataset.iframeAllow || 'camera; microphone; geolocation; accelerometer; gyroscope';
  const OUTCOMES = new Map([
    ['OK', { title: "You're verified", detail: 'Thank you, your identity has been confirmed.' }],
    ['WARN', { title: 'We need to review your verification', detail: 'We will let you know once it has been checked.' }],
    ['FAIL', { title: "We couldn't verify you", detail: 'Please contact support if you think this is a mistake.' }],
    ['UNKNOWN', { title: 'Result not available yet', detail: 'Your verification is complete, but its result is not ready.' }],
  ]);

  const SSE_MAX_ERRORS = 3; // error events in a row, with no status in between, before polling
  const POLL_MIN_MS = 1000;
  const POLL_MAX_MS = 10000;
  const POLL_FACTOR = 1.5;
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

  function withId(path, interviewId) {
    return path + '?interviewId=' + encodeURIComponent(interviewId);
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

  function delay(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
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
    frame.setAttribute('allow', IFRAME_ALLOW); // each feature for the flow's origin only
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
    if (current) closeTransports(current);
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

  // follow shows the flow for interviewId and starts watching its status.
  function follow(interviewId, url) {
    const run = {
      interviewId,
      status: null, // last status applied
      lastSeq: -Infinity, // highest SSE seq applied
      closed: false, // no more statuses wanted (finished, or session gone)
      source: null, // the EventSource while on SSE
      polling: false,
      pollTimer: 0,
      pollDelay: POLL_MIN_MS,
    };
    current = run;
    hideNotice();
    createIframe(url);
    if (window.EventSource) listen(run);
    else startPolling(run);
  }

  function isFollowing(run) {
    return run === current && !run.closed;
  }

  // applyStatus feeds one status, from SSE or polling, into the page and
  // reports whether it differs from the previous one.
  function applyStatus(run, status) {
    if (status === run.status) return false;
    run.status = status;
    renderStatus(status);
    if (FINAL.has(status)) finish(run);
    return true;
  }

  function closeTransports(run) {
    run.closed = true;
    closeSource(run);
    clearTimeout(run.pollTimer);
    run.pollTimer = 0;
  }

  function closeSource(run) {
    if (run.source) run.source.close();
    run.source = null;
  }

  // listen follows the status over SSE. The browser reconnects by itself
  // (with Last-Event-ID) after a dropped connection; the page only steps in
  // when that keeps failing or the browser gives up.
  function listen(run) {
    let source;
    try {
      source = new EventSource(withId('/events', run.interviewId), { withCredentials: true });
    } catch (err) {
      console.info('pushgate: cannot open the event stream, polling instead', err);
      startPolling(run);
      return;
    }
    run.source = source;
    setMode('sse');
    let errorsInRow = 0;

    source.addEventListener('status', guarded((event) => {
      if (!isFollowing(run)) return;
      errorsInRow = 0;
      const data = parseStatusEvent(event.data);
      if (!data || (data.interviewId && data.interviewId !== run.interviewId)) {
        console.warn('pushgate: ignored an unusable status event', event.data);
        return;
      }
      // A reconnect may replay what was already shown; seq orders events.
      if (Number.isFinite(data.seq)) {
        if (data.seq <= run.lastSeq) return;
        run.lastSeq = data.seq;
      }
      applyStatus(run, data.onboardingStatus);
    }));

    // The upstream forgot the session: nothing more will come.
    source.addEventListener('end', guarded(() => {
      if (!isFollowing(run)) return;
      sessionEnded(run);
    }));

    source.addEventListener('error', guarded(() => {
      if (!isFollowing(run) || run.source !== source) return;
      errorsInRow += 1;
      // CLOSED before ONBOARDING_FINISHED: the browser will not reconnect
      // (e.g. 204 for an interview that finished while the page was away,
      // or an HTTP error). Polling finds out which, and goes on from there.
      if (source.readyState === EventSource.CLOSED || errorsInRow >= SSE_MAX_ERRORS) {
        console.info('pushgate: event stream unavailable, polling instead');
        startPolling(run);
      }
    }));
  }

  // parseStatusEvent returns {interviewId, onboardingStatus, seq} from an
  // event's data, or null when it carries no status.
  function parseStatusEvent(text) {
    let data;
    try {
      data = JSON.parse(text);
    } catch (_) {
      return null;
    }
    if (!data || typeof data.onboardingStatus !== 'string' || !data.onboardingStatus) return null;
    return {
      interviewId: typeof data.interviewId === 'string' ? data.interviewId : '',
      onboardingStatus: data.onboardingStatus,
      seq: typeof data.seq === 'number' ? data.seq : NaN,
    };
  }

  function startPolling(run) {
    closeSource(run);
    if (run.polling) return;
    run.polling = true;
    setMode('polling');
    poll(run);
  }

  // poll asks for the status once and schedules the next ask: the delay
  // grows by POLL_FACTOR up to POLL_MAX_MS and falls back to POLL_MIN_MS
  // whenever the status changes. Failed asks just wait longer.
  async function poll(run) {
    run.pollTimer = 0;
    let res = null;
    try {
      res = await getJSON(withId('/onboarding-status', run.interviewId));
    } catch (err) {
      console.info('pushgate: status poll got no answer, retrying', err);
    }
    if (!isFollowing(run)) return;
    if (res && res.status === SESSION_ENDED) {
      sessionEnded(run);
      return;
    }
    if (res && SESSION_GONE.includes(res.status)) {
      sessionGone(run, reasonOf(res));
      return;
    }
    const status = res && res.ok && res.body ? res.body.onboardingStatus : null;
    if (typeof status === 'string' && status && applyStatus(run, status)) run.pollDelay = POLL_MIN_MS;
    if (!isFollowing(run)) return; // that status finished the interview
    run.pollTimer = setTimeout(guarded(poll), run.pollDelay, run);
    run.pollDelay = Math.min(run.pollDelay * POLL_FACTOR, POLL_MAX_MS);
  }

  // finish ends the interview's flow: the iframe goes, the result comes.
  function finish(run) {
    closeTransports(run);
    removeIframe();
    forgetSession();
    loadScore(run).catch(unexpected);
  }

  // loadScore shows the outcome of /fetch-score. Just after
  // ONBOARDING_FINISHED the gateway may still answer 409, so that is retried
  // a few times before the page says the result is not ready.
  async function loadScore(run) {
    showNotice('Verification complete. Getting your result…');
    for (let attempt = 1; ; attempt++) {
      let res;
      try {
        res = await getJSON(withId('/fetch-score', run.interviewId));
      } catch (err) {
        if (run === current) scoreFailed(run, reasonOfException(err));
        return;
      }
      if (run !== current) return;
      if (res.status === 409 && attempt < SCORE_ATTEMPTS) {
        await delay(SCORE_RETRY_MS);
        if (run !== current) return;
        continue;
      }
      hideNotice();
      if (res.ok) {
        showResult(res.body && res.body.status);
      } else if (res.status === 409) {
        showResult('UNKNOWN');
        showError("Your result isn't ready yet. Please check again in a moment.", 'Check again', () => loadScore(run));
      } else if (res.status === SESSION_ENDED) {
        sessionEnded(run);
      } else if (SESSION_GONE.includes(res.status)) {
        sessionGone(run, reasonOf(res));
      } else {
        scoreFailed(run, reasonOf(res));
      }
      return;
    }
  }

  function scoreFailed(run, reason) {
    showError("We couldn't get your verification result (" + reason + '). Please try again.', 'Try again', () => loadScore(run));
  }

  // sessionGone handles a gateway that no longer knows the session (expired
  // cookie, unknown interview): nothing on this page can recover it.
  function sessionGone(run, reason) {
    closeTransports(run);
    removeIframe();
    forgetSession();
    showError('Your verification session has ended (' + reason + '). Please start again.', 'Start again', restart);
  }

  // sessionEnded handles a session the upstream forgot (its event "end",
  // or 410 to a poll): the flow cannot go on; a new session can.
  function sessionEnded(run) {
    closeTransports(run);
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
})();
