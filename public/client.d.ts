// Types of pushgate's browser client (GET /client.js, an ES module; GET
// /client.classic.js puts the same functions on window.pushgate).

/** How statuses arrive: a fetch stream (with a token), the browser's EventSource (with the cookie), or polling. */
export type Transport = 'stream' | 'eventsource' | 'polling';

/** Statuses the upstream sends; others may come and are passed on as they are. */
export type OnboardingStatus =
  | 'UNKNOWN'
  | 'ID_VALIDATION_FINISHED'
  | 'ID_VALIDATION_FINISHED_SECOND_ID'
  | 'GOVERNMENT_VALIDATION_FINISHED'
  | 'POST_PROCESSING_FINISHED'
  | 'FACE_VALIDATION_FINISHED'
  | 'ONBOARDING_FINISHED'
  | 'MANUAL_REVIEW_APPROVED'
  | 'MANUAL_REVIEW_REJECTED'
  | (string & {});

/** Why a session ended: its session token expired upstream, or the upstream deleted it. */
export type EndReason = 'expired' | 'not_found';

export interface GatewayOptions {
  /** The gateway's origin or base URL, e.g. "https://push.example"; omitted means this page's origin. */
  gateway?: string;
  /** The interview to follow, as POST /v1/sessions (or /onboarding-url) answered it. */
  interviewId: string;
  /**
   * The browser token for the interview, as POST /v1/sessions answered it. It is sent in the X-Token
   * header, never in a URL. Omitted, the interview's cookie is used: same-origin pages only.
   */
  token?: string;
  /** Milliseconds each request may take. Default 15000. */
  requestTimeout?: number;
}

export interface WatchOptions extends GatewayOptions {
  /** Every status change, in the order the gateway saw them, each once. */
  onStatus?: (status: OnboardingStatus, info: { seq: number | null }) => void;
  /** The flow is over (ONBOARDING_FINISHED, or a manual review after it): close the iframe. Called after onStatus. */
  onFinished?: (status: OnboardingStatus) => void;
  /** The upstream forgot the session: nothing more will come; start a new one. */
  onEnd?: (reason: EndReason) => void;
  /** The gateway refused the session (401 token invalid or expired, 403 other interview, 404 unknown); the watch stopped. */
  onError?: (error: GatewayError) => void;
  /** The transport in use, whenever it changes. */
  onTransport?: (transport: Transport) => void;
  /** Force a transport; 'auto' (the default) picks 'stream' with a token, 'eventsource' without. */
  transport?: 'auto' | Transport;
  /** First delay between polls in ms (default 1000); it grows by half while nothing changes. */
  pollInterval?: number;
  /** Longest delay between polls in ms. Default 10000. */
  maxPollInterval?: number;
  /** Milliseconds an answered stream may stay silent before it counts as blocked and polling starts (a stream unanswered for requestTimeout counts so too). Default 10000. */
  streamTimeout?: number;
  /** Milliseconds without a byte (heartbeats included) before a stream is reopened; above the gateway's -heartbeat. Default 45000. */
  idleTimeout?: number;
  /** Milliseconds before reopening a dropped stream, until the gateway says otherwise. Default 1000. */
  retry?: number;
  /** Failed stream opens in a row before polling. Default 3. */
  maxStreamFailures?: number;
}

export interface Watch {
  /** Stops following: no callback is called after it. */
  close(): void;
}

/** Follows one interview's status until the flow is over, the session ends, the gateway refuses it, or close(). */
export function watchOnboarding(options: WatchOptions): Watch;

export interface VerdictOptions extends GatewayOptions {
  /** Tries while the gateway answers 409 (the score is not ready yet). Default 5. */
  attempts?: number;
  /** Milliseconds between those tries. Default 1500. */
  retryDelay?: number;
}

/** The verdict of a finished interview; the full score is for the backend (GET /v1/sessions/{interviewId}). */
export interface Verdict {
  status: 'OK' | 'WARN' | 'FAIL' | 'UNKNOWN' | (string & {});
}

/**
 * Reads the verdict from /fetch-score. Rejects with a GatewayError when the gateway refuses, and with
 * the fetch's own error (a TypeError, or an AbortError after requestTimeout) when no answer came.
 */
export function fetchVerdict(options: VerdictOptions): Promise<Verdict>;

/** A refusal from the gateway: its HTTP status and the gateway's words. */
export class GatewayError extends Error {
  readonly name: 'GatewayError';
  readonly status: number;
  constructor(status: number, message: string);
}
