// The HTTP half of testio:sync/customer-api, on a worker thread. The engine's imports are
// synchronous, and a synchronous function cannot await `fetch`; synckit runs this async
// function on a worker and blocks the caller with Atomics.wait until it answers.
// Answers are raw (status and text); the main thread judges and parses them.

import { runAsWorker } from 'synckit';

const REQUEST_TIMEOUT_MS = 60_000;
const MAX_BODY_BYTES = 64 << 20;
const USER_AGENT = 'testio-sync-node-host';

runAsWorker(async ({ baseUrl, token, maxInFlight }, endpoints) => {
  const answers = new Array(endpoints.length);
  let next = 0;
  // `maxInFlight` lanes, each taking the next endpoint until none is left.
  const lane = async () => {
    while (next < endpoints.length) {
      const index = next++;
      answers[index] = await get(baseUrl, token, endpoints[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(maxInFlight, endpoints.length) }, lane));
  return answers;
});

async function get(baseUrl, token, endpoint) {
  try {
    const response = await fetch(new URL(endpoint, baseUrl), {
      headers: { Authorization: `Token ${token}`, Accept: 'application/json', 'User-Agent': USER_AGENT },
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const length = Number(response.headers.get('content-length') ?? 0);
    if (length > MAX_BODY_BYTES) {
      await response.body?.cancel();
      return { status: response.status, tooLarge: true };
    }
    return { status: response.status, body: await response.text() };
  } catch (error) {
    return { network: describe(error) };
  }
}

// fetch's messages name neither the URL's credentials nor the headers, so the token stays out.
function describe(error) {
  if (error.name === 'TimeoutError') return `the request timed out after ${REQUEST_TIMEOUT_MS / 1000} s`;
  const cause = error.cause;
  return cause ? `the request failed: ${cause.code ?? cause.name}: ${cause.message}` : `the request failed: ${error.message}`;
}
