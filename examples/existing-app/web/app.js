// The app's page. It asks its backend for a verification session, shows
// the onboarding flow in an iframe, follows it with pushgate's client
// (no polling loop), closes the iframe when the flow is over, and shows
// the verdict its backend read. The numbers are the steps of
// docs/integrating.md.

const $ = (id) => document.getElementById(id);

const STEPS = {
  UNKNOWN: 'Session started',
  ID_VALIDATION_FINISHED: 'ID captured',
  ID_VALIDATION_FINISHED_SECOND_ID: 'Back of the ID captured',
  GOVERNMENT_VALIDATION_FINISHED: 'ID checked with the government',
  POST_PROCESSING_FINISHED: 'ID checked',
  FACE_VALIDATION_FINISHED: 'Selfie taken',
  ONBOARDING_FINISHED: 'Finished',
  MANUAL_REVIEW_APPROVED: 'Approved after review',
  MANUAL_REVIEW_REJECTED: 'Rejected after review',
};

const VERDICTS = {
  OK: 'Your identity is verified. Welcome to Acme Bank!',
  WARN: 'Thank you. We need to look at your documents, and will email you.',
  FAIL: 'We could not verify your identity.',
};

// Where pushgate is: the backend wrote it in the page.
const gateway = document.querySelector('meta[name="pushgate"]').content;

if (navigator.language.startsWith('es')) $('language').value = 'es-ES';
loadClient().then(({ watchOnboarding }) => {
  $('start-button').addEventListener('click', () => start(watchOnboarding).catch(showError));
  $('start-button').disabled = false;
}, showError);

// loadClient imports client.js from pushgate, across origins: this page's
// origin must be in pushgate's -allowed-origins. A page that knows where
// pushgate is can write the import at its top instead:
//   import { watchOnboarding } from 'https://push.example/client.js';
async function loadClient() {
  try {
    return await import(`${gateway}/client.js`);
  } catch (err) {
    throw new Error(`Could not load ${gateway}/client.js: is ${location.origin} in pushgate's -allowed-origins? (${err.message})`);
  }
}

async function start(watchOnboarding) {
  $('start-button').disabled = true;
  // 1-2. The backend starts the session with pushgate's POST /v1/sessions
  // (and its API token, which the page never sees).
  const session = await backend('/onboarding-url', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ language: $('language').value }),
  });
  $('start').hidden = true;
  const frame = showFlow(session.url);

  // 3-4. Status changes come pushed, in order, each once.
  const watch = watchOnboarding({
    gateway,
    interviewId: session.interviewId,
    token: session.token, // sent in a header, never in a URL
    onStatus: showStep,
    onFinished() {
      closeFlow(frame);
      showResult(session.interviewId).catch(showError);
    },
    onEnd() {
      closeFlow(frame);
      showError(new Error('This verification session has expired. Reload the page to start again.'));
    },
    onError(err) {
      closeFlow(frame);
      showError(err); // 401/403/404: the token is wrong or expired
    },
  });
  window.addEventListener('pagehide', () => watch.close());
}

// showFlow shows the onboarding flow in an iframe that fills #app; the
// container's height comes from style.css (2).
function showFlow(url) {
  const frame = document.createElement('iframe');
  frame.id = 'app-iframe';
  frame.src = url;
  frame.width = '100%';
  frame.height = '100%';
  frame.allow = 'camera; microphone; geolocation; accelerometer; gyroscope';
  $('app').appendChild(frame);
  $('app').hidden = false;
  return frame;
}

// closeFlow removes the iframe through its parent, which stops the flow
// (and the camera) for good (4).
function closeFlow(frame) {
  frame.parentNode?.removeChild(frame);
  $('app').hidden = true;
}

function showStep(status) {
  const li = document.createElement('li');
  li.dataset.status = status;
  li.textContent = STEPS[status] ?? status;
  $('progress').appendChild(li);
}

// showResult tells the backend the flow is over. It reads the full score
// from pushgate and keeps it; the page gets the verdict alone (5-6).
async function showResult(interviewId) {
  const { status } = await backend(`/fetch-score?interviewId=${encodeURIComponent(interviewId)}`);
  $('result-text').textContent = VERDICTS[status] ?? `Verdict: ${status}`;
  $('result').dataset.verdict = status;
  $('result').hidden = false;
}

// backend calls the app's own backend and returns its JSON answer.
async function backend(path, init) {
  const res = await fetch(path, init);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error ?? `${path}: ${res.status}`);
  return body;
}

function showError(err) {
  $('error').textContent = err.message;
  $('error').hidden = false;
}
