// The HTTP half of testio:sync/customer-api, on a worker thread. The engine's imports are
// synchronous, and a synchronous function cannot await `fetch`; synckit runs this async
// function on a worker and blocks the caller with Atomics.wait until it answers.
// Answers are raw (status and text, plus the attempts made); the main thread judges and
// parses them. Retries follow the rules in wit/customer-api.wit.

import { setTimeout as sleep } from 'node:timers/promises';

import { runAsWorker } from 'synckit';

const REQUEST_TIMEOUT_MS = 60_000;
const MAX_BODY_BYTES = 64 << 20;
const USER_AGENT = 'testio-sync-node-host';
const TRANSIENT_STATUSES = new Set([408, 502, 503, 504, 524]);
const RETRIES = 3;
/** 429s that do not use up a retry. */
const FREE_RATE_LIMITS = 3;
const BACKOFF_START_MS = 500;
const BACKOFF_CAP_MS = 4_000;
const RETRY_AFTER_DEFAULT_MS = 1_000;
const RETRY_AFTER_CAP_MS = 60_000;

runAsWorker(async ({ baseUrl, token, maxInFlight }, endpoints, handled = []) => {
  const answers = new Array(endpoints.length);
  const handledStatuses = new Set(handled);
  let next = 0;
  // `maxInFlight` lanes, each taking the next endpoint until none is left.
  const lane = async () => {
    while (next < endpoints.length) {
      const index = next++;
      answers[index] = await getWithRetries(baseUrl, token, endpoints[index], handledStatuses);
    }
  };
  await Promise.all(Array.from({ length: Math.min(maxInFlight, endpoints.length) }, lane));
  return answers;
});

/** A status in `handled` comes back at its first answer, whatever the rules say of it: the engine has its own answer. */
async function getWithRetries(baseUrl, token, endpoint, handled) {
  let retriesLeft = RETRIES;
  let rateLimits = 0;
  for (let attempts = 1; ; attempts++) {
    const answer = await get(baseUrl, token, endpoint);
    if (handled.has(answer.status)) return { ...answer, attempts };
    const rateLimited = answer.status === 429;
    const transient = answer.network !== undefined || TRANSIENT_STATUSES.has(answer.status);
    if (!(rateLimited || transient)) return { ...answer, attempts };
    if (rateLimited && rateLimits++ < FREE_RATE_LIMITS) {
      await sleep(answer.retryAfterMs);
      continue;
    }
    if (retriesLeft-- === 0) return { ...answer, attempts };
    await sleep(rateLimited ? answer.retryAfterMs : backoff(RETRIES - retriesLeft));
  }
}

/** Exponential from BACKOFF_START_MS, capped, with full jitter in its upper half. */
function backoff(retry) {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_START_MS * 2 ** (retry - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

async function get(baseUrl, token, endpoint) {
  try {
    const response = await fetch(new URL(endpoint, baseUrl), {
      headers: { Authorization: `Token ${token}`, Accept: 'application/json', 'User-Agent': USER_AGENT },
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const { status } = response;
    const length = Number(response.headers.get('content-length') ?? 0);
    if (length > MAX_BODY_BYTES) {
      await response.body?.cancel();
      return { status, tooLarge: true };
    }
    const body = await response.text();
    return status === 429 ? { status, body, retryAfterMs: retryAfter(response.headers.get('retry-after')) } : { status, body };
  } catch (error) {
    return { network: describe(error) };
  }
}

/** `Retry-After` in seconds or as an HTTP date, capped. */
function retryAfter(header) {
  if (header === null) return RETRY_AFTER_DEFAULT_MS;
  const seconds = Number(header);
  const wait = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
  return Number.isFinite(wait) ? Math.min(Math.max(wait, 0), RETRY_AFTER_CAP_MS) : RETRY_AFTER_DEFAULT_MS;
}

// fetch's messages name neither the URL's credentials nor the headers, so the token stays out.
function describe(error) {
  if (error.name === 'TimeoutError') return `the request timed out after ${REQUEST_TIMEOUT_MS / 1000} s`;
  const cause = error.cause;
  return cause ? `the request failed: ${cause.code ?? cause.name}: ${cause.message}` : `the request failed: ${error.message}`;
}
