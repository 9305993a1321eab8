// pushgate's browser client: follows one onboarding session's status from
// the gateway, so a page needs no polling loop of its own.
//
//   import { watchOnboarding } from 'https://push.example/client.js';
//   const watch = watchOnboarding({
//     gateway: 'https://push.example', interviewId, token,
//     onStatus(status) { ... },       // every change, in order
//     onFinished(status) { ... },     // the flow is over: close the iframe
//     onEnd(reason) { ... },          // the session expired or was deleted
//     onError(error) { ... },         // the gateway refused this session
//   });
//   watch.close();                    // stop, e.g. when the page leaves
//
// With a token (what the integrator's backend got from POST /v1/sessions)
// the client streams over fetch and sends the token in the X-Token header:
// it works across origins (list the page's origin in -allowed-origins) and
// the token never appears in a URL or an access log. Without a token it
// uses the browser's EventSource and the interview's cookie, which only
// same-origin pages have (the gateway's own page). Either way it resumes
// with Last-Event-ID after a dropped connection, stops after the final
// event, and falls back to polling /onboarding-status when streaming is
// blocked (a proxy that buffers, so nothing arrives; a network that keeps
// failing the stream).
//
// Dependency-free ES module; /client.classic.js is the same code for a
// classic <script>, as window.pushgate. Types: /client.d.ts.

// The flow is over on ONBOARDING_FINISHED, or on a manual review decided
// after it (a page opened late may see only that).
const FINAL = new Set(['ONBOARDING_FINISHED', 'MANUAL_REVIEW_APPROVED', 'MANUAL_REVIEW_REJECTED']);
const FATAL = new Set([401, 403, 404]); // the gateway does not know this session, or this caller
const ENDED = 410; // the upstream forgot the session

const DEFAULTS = {
  gateway: '', // the gateway's origin (or base URL); '' means this page's origin
  token: '', // the browser token for the interview; '' uses the cookie (same origin only)
  pollInterval: 1000, // first delay between polls, in ms; it grows while nothing changes
  maxPollInterval: 10000,
  streamTimeout: 10000, // ms without a byte after a stream opened before it counts as blocked
  idleTimeout: 45000, // ms without a byte (heartbeats included) before a stream is reopened
  retry: 1000, // ms before reopening a stream, until the gateway says otherwise
  maxStreamFailures: 3, // failed opens in a row before polling
  requestTimeout: 15000, // ms for each poll
  transport: 'auto', // 'auto', 'stream' (fetch), 'eventsource' or 'polling'
};

/**
 * watchOnboarding follows the status of options.interviewId until the flow
 * is over, the session ends, the gateway refuses it, or close() is called.
 * See client.d.ts for the options and callbacks.
 */
export function watchOnboarding(options) {
  const o = settings(options);
  if (typeof o.interviewId !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(o.interviewId)) {
    throw new TypeError('pushgate: watchOnboarding needs the interviewId the session was started with');
  }
  const w = {
    o,
    base: gatewayBase(o.gateway),
    closed: false,
    status: null, // the last status reported
    lastSeq: -1, // the highest seq applied
    lastId: '', // the last event id, sent as Last-Event-ID on reopen
    retry: o.retry,
    abort: null, // aborts the stream or poll in flight
    source: null, // the EventSource, when on one
    timer: 0,
    mode: '', // the transport in use
  };
  const mode = pickTransport(o);
  // Started after this returns, so callbacks may use the returned handle.
  Promise.resolve().then(() => {
    if (w.closed) return;
    if (mode === 'stream') stream(w);
    else if (mode === 'eventsource') eventSource(w);
    else poll(w, o.pollInterval);
  });
  return { close: () => stop(w) };
}

/**
 * fetchVerdict reads the verdict of a finished interview from
 * /fetch-score: {status: 'OK' | 'WARN' | 'FAIL' | 'UNKNOWN' | ...}. Just
 * after ONBOARDING_FINISHED the gateway may answer 409 for a moment; that
 * is retried. It rejects with a GatewayError for any other refusal, and
 * with the fetch's own error (a TypeError, or an AbortError after
 * requestTimeout) when no answer came.
 */
export async function fetchVerdict(options) {
  const o = settings(options);
  const attempts = o.attempts > 0 ? o.attempts : 5;
  const delay = o.retryDelay >= 0 ? o.retryDelay : 1500;
  const url = gatewayBase(o.gateway) + '/fetch-score?interviewId=' + encodeURIComponent(o.interviewId);
  for (let attempt = 1; ; attempt++) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), o.requestTimeout);
    let res;
    try {
      res = await getJSON(url, o, abort.signal);
    } finally {
      clearTimeout(timer);
    }
    if (res.ok) return { status: res.body && typeof res.body.status === 'string' ? res.body.status : 'UNKNOWN' };
    if (res.status !== 409 || attempt >= attempts) throw gatewayError(res);
    await sleep(delay);
  }
}

/** GatewayError is a refusal from the gateway: its HTTP status and words. */
export class GatewayError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'GatewayError';
    this.status = status;
  }
}

// ---------------------------------------------------------------- common

function settings(options) {
  if (!options || typeof options !== 'object') throw new TypeError('pushgate: options are required');
  return Object.assign({}, DEFAULTS, options);
}

// gatewayBase returns the gateway's base URL without a trailing slash.
function gatewayBase(gateway) {
  const url = new URL(gateway || '/', window.location.href);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TypeError('pushgate: gateway must be an http(s) URL');
  return url.origin + url.pathname.replace(/\/+$/, '');
}

function pickTransport(o) {
  if (!['auto', 'stream', 'eventsource', 'polling'].includes(o.transport)) {
    throw new TypeError("pushgate: transport must be 'auto', 'stream', 'eventsource' or 'polling'");
  }
  if (o.transport === 'eventsource' && o.token) {
    throw new TypeError('pushgate: EventSource cannot send a token; use the stream transport, or the cookie without a token');
  }
  if (o.transport !== 'auto') return o.transport;
  const streams = typeof fetch === 'function' && typeof ReadableStream === 'function' && typeof TextDecoder === 'function' && typeof AbortController === 'function';
  if (o.token) return streams ? 'stream' : 'polling';
  return typeof EventSource === 'function' ? 'eventsource' : 'polling';
}

// notify calls a callback of the caller's; one that throws is logged and
// does not stop the client.
function notify(fn, ...args) {
  if (typeof fn !== 'function') return;
  try {
    fn(...args);
  } catch (err) {
    console.error('pushgate: a callback threw', err);
  }
}

// transport reports the way statuses now arrive: 'stream', 'eventsource'
// or 'polling'.
function transport(w, mode) {
  if (w.mode === mode) return;
  w.mode = mode;
  notify(w.o.onTransport, mode);
}

function stop(w) {
  w.closed = true;
  clearTimeout(w.timer);
  if (w.abort) w.abort.abort();
  if (w.source) w.source.close();
  w.abort = null;
  w.source = null;
}

// apply reports a status, once per change and never an older event's.
function apply(w, status, seq) {
  if (w.closed || typeof status !== 'string' || !status) return;
  if (typeof seq === 'number' && Number.isFinite(seq)) {
    if (seq <= w.lastSeq) return;
    w.lastSeq = seq;
  }
  if (status === w.status) return;
  w.status = status;
  notify(w.o.onStatus, status, { seq: typeof seq === 'number' ? seq : null });
  if (FINAL.has(status) && !w.closed) {
    stop(w);
    notify(w.o.onFinished, status);
  }
}

function ended(w, reason) {
  if (w.closed) return;
  stop(w);
  notify(w.o.onEnd, reason === 'not_found' ? 'not_found' : 'expired');
}

function refused(w, res) {
  if (w.closed) return;
  stop(w);
  notify(w.o.onError, gatewayError(res));
}

// answered handles the answers every transport treats alike, and reports
// whether it did.
function answered(w, res) {
  if (res.status === ENDED) {
    ended(w, res.body && res.body.code === 'session_not_found' ? 'not_found' : 'expired');
    return true;
  }
  if (FATAL.has(res.status)) {
    refused(w, res);
    return true;
  }
  return false;
}

function gatewayError(res) {
  const text = res.body && typeof res.body.error === 'string' ? res.body.error : '';
  return new GatewayError(res.status, text || 'the gateway answered ' + res.status);
}

// request options: the token in a header, never in the URL; the cookie
// only without a token.
function init(o, accept, signal) {
  const headers = { Accept: accept };
  if (o.token) headers['X-Token'] = o.token;
  return { headers, credentials: o.token ? 'omit' : 'include', cache: 'no-store', signal };
}

async function getJSON(url, o, signal) {
  const response = await fetch(url, init(o, 'application/json', signal));
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    // Empty or not JSON, e.g. a proxy's error page.
  }
  return { ok: response.ok, status: response.status, body, retryAfter: Number(response.headers.get('Retry-After')) || 0 };
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function later(w, ms, fn) {
  clearTimeout(w.timer);
  w.timer = setTimeout(() => {
    if (!w.closed) fn();
  }, ms);
}

function eventsURL(w) {
  return w.base + '/events?interviewId=' + encodeURIComponent(w.o.interviewId);
}

// --------------------------------------------------------- fetch streaming

// stream follows the status over a fetch of /events, reading the event
// stream itself, so the token can go in a header. It reopens after a drop
// with Last-Event-ID, and turns to polling when opens keep failing or the
// stream stays silent (something on the way buffers it).
async function stream(w) {
  transport(w, 'stream');
  let failures = 0;
  while (!w.closed) {
    const outcome = await streamOnce(w);
    if (w.closed || outcome === 'done') return;
    if (outcome === 'blocked') {
      console.info('pushgate: the event stream stays silent, polling instead');
      poll(w, w.o.pollInterval);
      return;
    }
    failures = outcome === 'failed' ? failures + 1 : 0;
    if (failures >= w.o.maxStreamFailures) {
      console.info('pushgate: the event stream keeps failing, polling instead');
      poll(w, w.o.pollInterval);
      return;
    }
    // Spread the reopens of many pages over the retry hint.
    await sleep(w.retry * (0.5 + Math.random()));
  }
}

// streamOnce opens the stream once and reads it to its end. It resolves to
// 'done' (nothing more will come), 'dropped' (it delivered, then ended),
// 'failed' (no stream) or 'blocked' (a stream that never delivered).
async function streamOnce(w) {
  const abort = new AbortController();
  w.abort = abort;
  // The answer may wait for an upstream read (the first status), so it
  // gets requestTimeout, above the gateway's own bound on that; after it,
  // streamTimeout for the first bytes. Missing either, something on the
  // way holds the stream back.
  let silent = false;
  let timer = setTimeout(() => {
    silent = true;
    abort.abort();
  }, w.o.requestTimeout);
  const headers = init(w.o, 'text/event-stream', abort.signal);
  if (w.lastId) headers.headers['Last-Event-ID'] = w.lastId;
  let delivered = false;
  try {
    const response = await fetch(eventsURL(w), headers);
    if (response.status === 204) {
      // The gateway says this client saw the end already; one poll tells
      // the page how it ended, should it have missed that.
      clearTimeout(timer);
      poll(w, w.o.pollInterval);
      return 'done';
    }
    const type = response.headers.get('Content-Type') || '';
    if (!response.ok || !response.body || !type.startsWith('text/event-stream')) {
      clearTimeout(timer);
      let body = null;
      try {
        body = await response.json();
      } catch (_) {
        // not JSON
      }
      if (answered(w, { status: response.status, body })) return 'done';
      const wait = Number(response.headers.get('Retry-After'));
      if (wait > 0) w.retry = Math.min(wait * 1000, 60000);
      return 'failed';
    }
    clearTimeout(timer);
    timer = setTimeout(() => {
      silent = true;
      abort.abort();
    }, w.o.streamTimeout);
    const parser = newParser((event) => dispatch(w, event));
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done || w.closed) break;
      clearTimeout(timer);
      timer = setTimeout(() => abort.abort(), w.o.idleTimeout);
      delivered = true;
      parser(decoder.decode(value, { stream: true }));
    }
    return w.closed ? 'done' : delivered ? 'dropped' : 'failed';
  } catch (err) {
    if (w.closed) return 'done';
    if (silent) return 'blocked';
    return delivered ? 'dropped' : 'failed'; // a stream reset after it delivered is a drop
  } finally {
    clearTimeout(timer);
    if (w.abort === abort) w.abort = null;
  }
}

// newParser returns a function fed the stream's text in chunks; it calls
// onEvent with {type, data, id} for each event, as the WHATWG event-stream
// format says: lines end in CRLF, LF or CR, a blank line dispatches.
function newParser(onEvent) {
  let line = '';
  let skipLF = false;
  let type = '';
  let data = [];
  let id = null;
  let retry = null;
  const field = (text) => {
    if (text === '') {
      if (data.length > 0) onEvent({ type: type || 'message', data: data.join('\n'), id, retry });
      else if (retry !== null) onEvent({ type: '', data: '', id, retry });
      type = '';
      data = [];
      retry = null;
      return;
    }
    if (text[0] === ':') return; // a comment: the heartbeat
    const colon = text.indexOf(':');
    const name = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (name === 'event') type = value;
    else if (name === 'data') data.push(value);
    else if (name === 'id' && value.indexOf('\0') < 0) id = value;
    else if (name === 'retry' && /^\d+$/.test(value)) retry = Number(value);
  };
  return (chunk) => {
    for (const c of chunk) {
      if (skipLF && c === '\n') {
        skipLF = false;
        continue;
      }
      skipLF = c === '\r';
      if (c === '\r' || c === '\n') {
        field(line);
        line = '';
      } else {
        line += c;
      }
    }
  };
}

// dispatch applies one event of the fetch stream.
function dispatch(w, event) {
  if (event.retry !== null) w.retry = event.retry;
  if (event.id !== null) w.lastId = event.id;
  if (event.type === 'status') applyEvent(w, event.data);
  else if (event.type === 'end') ended(w, parse(event.data).reason);
}

function parse(text) {
  try {
    const v = JSON.parse(text);
    return v && typeof v === 'object' ? v : {};
  } catch (_) {
    return {};
  }
}

function applyEvent(w, text) {
  const data = parse(text);
  if (data.interviewId && data.interviewId !== w.o.interviewId) return;
  apply(w, data.onboardingStatus, data.seq);
}

// ------------------------------------------------------------ EventSource

// eventSource follows the status with the browser's EventSource and the
// interview's cookie. The browser reconnects by itself, with
// Last-Event-ID; the client turns to polling when that keeps failing or
// the browser gives up (an HTTP error, whose status polling then learns).
function eventSource(w) {
  let source;
  try {
    source = new EventSource(eventsURL(w), { withCredentials: true });
  } catch (err) {
    poll(w, w.o.pollInterval);
    return;
  }
  w.source = source;
  transport(w, 'eventsource');
  let errors = 0;
  // The first connect always brings the current status at once: none
  // within streamTimeout means something on the way holds the stream back.
  let silence = setTimeout(() => {
    if (w.closed || w.source !== source) return;
    console.info('pushgate: the event stream stays silent, polling instead');
    source.close();
    w.source = null;
    poll(w, w.o.pollInterval);
  }, w.o.streamTimeout);
  source.addEventListener('open', () => {
    errors = 0;
  });
  source.addEventListener('status', (event) => {
    errors = 0;
    clearTimeout(silence);
    applyEvent(w, event.data);
  });
  source.addEventListener('end', (event) => ended(w, parse(event.data).reason));
  source.addEventListener('error', () => {
    if (w.closed || w.source !== source) return;
    errors += 1;
    if (source.readyState === EventSource.CLOSED || errors >= w.o.maxStreamFailures) {
      console.info('pushgate: the event stream is unavailable, polling instead');
      clearTimeout(silence);
      source.close();
      w.source = null;
      poll(w, w.o.pollInterval);
    }
  });
}

// ---------------------------------------------------------------- polling

// poll asks /onboarding-status once, then again after a delay that starts
// at pollInterval and grows by half while nothing changes, up to
// maxPollInterval; a change starts it over. Failed asks just wait longer.
async function poll(w, delay) {
  if (w.closed) return;
  transport(w, 'polling');
  const before = w.status;
  const abort = new AbortController();
  w.abort = abort;
  const timer = setTimeout(() => abort.abort(), w.o.requestTimeout);
  let res = null;
  try {
    res = await getJSON(w.base + '/onboarding-status?interviewId=' + encodeURIComponent(w.o.interviewId), w.o, abort.signal);
  } catch (err) {
    // No answer: try again later.
  } finally {
    clearTimeout(timer);
    if (w.abort === abort) w.abort = null;
  }
  if (w.closed || (res && answered(w, res))) return;
  if (res && res.ok && res.body) apply(w, res.body.onboardingStatus);
  if (w.closed) return;
  let wait = w.status !== before ? w.o.pollInterval : delay;
  if (res && res.retryAfter > 0) wait = Math.max(wait, Math.min(res.retryAfter * 1000, 60000));
  later(w, wait, () => poll(w, Math.min(wait * 1.5, w.o.maxPollInterval)));
}
