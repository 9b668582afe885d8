// testio:sync/customer-api over Node's fetch. Each batch goes to the HTTP worker in one
// blocking call and runs there concurrently; this side turns every answer into the
// summary the engine asks for plus a `Payload` that holds the parsed records.

import { fileURLToPath } from 'node:url';

import { createSyncFn } from 'synckit';

import { ComponentFailure } from './failure.mjs';
import { parseInstant } from './instant.mjs';

const fetchBatch = createSyncFn(fileURLToPath(new URL('./http-worker.mjs', import.meta.url)));

/** The `payload` resource: the records of one parsed answer, by id. */
export class Payload {
  constructor(kind, records) {
    this.kind = kind;
    this.byId = new Map(records.map((record) => [record.id, record]));
  }
}

/** A body of the wrong shape; its message says what was wrong. */
class ShapeError extends Error {}

export function customerApi({ baseUrl, token, maxInFlight = 10 }) {
  const settings = { baseUrl: baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`, token, maxInFlight };

  /**
   * GETs every endpoint and answers in request order with `ok(reply)` or `err(api-error)`;
   * a status in `handled` comes back at its first answer.
   */
  function fetchAll(endpoints, envelope, reply, handled = []) {
    return fetchBatch(settings, endpoints, handled).map((answer, i) => {
      const endpoint = endpoints[i];
      const failure = judge(answer, endpoint);
      if (failure) return { tag: 'err', val: failure };
      try {
        return { tag: 'ok', val: reply(records(answer.body, envelope)) };
      } catch (error) {
        if (!(error instanceof ShapeError)) throw error;
        const message = `the response is not the JSON the API documents: ${error.message}`;
        return { tag: 'err', val: { failure: { tag: 'bad-payload' }, endpoint, attempts: answer.attempts, message } };
      }
    });
  }

  return {
    Payload,
    listProducts() {
      const [answer] = fetchAll(['products'], 'products', (products) => ({
        products: products.map(productSummary),
        body: new Payload('products', products),
      }));
      if (answer.tag === 'err') throw new ComponentFailure(answer.val);
      return answer.val;
    },
    fetchFeatures(requests) {
      const endpoints = requests.map(({ productId, sectionId }) =>
        sectionId === undefined
          ? `products/${productId}/features`
          : `products/${productId}/sections/${sectionId}/features`,
      );
      return fetchAll(endpoints, 'features', (features) => ({
        featureIds: BigUint64Array.from(features, (f) => f.id),
        body: new Payload('features', features),
      }));
    },
    fetchTestsPages(requests) {
      const endpoints = requests.map(
        ({ productId, page, perPage }) => `products/${productId}/exploratory_tests?page=${page}&per_page=${perPage}`,
      );
      return fetchAll(endpoints, 'exploratory_tests', testsPage);
    },
    fetchTests(ids) {
      const endpoints = Array.from(ids, (id) => `exploratory_tests/${id}`);
      return fetchAll(endpoints, 'exploratory_test', testsPage);
    },
    fetchBugs(batches, handled) {
      const endpoints = batches.map((ids) => `bugs?filter_test_cycle_ids=${Array.from(ids).join(',')}`);
      const reply = (records) => {
        const bugs = records.map((bug) => ({ ...bug, testId: optionalId(bug.json.test?.id) }));
        return { bugs: bugs.map(({ id, testId }) => ({ id, testId })), body: new Payload('bugs', bugs) };
      };
      // The engine has its own answer to these (it splits a batch that timed out: 524).
      return fetchAll(endpoints, 'bugs', reply, handled);
    },
  };
}

/** The api-error for an answer that is not a success, or nothing. */
function judge(answer, endpoint) {
  const failed = (failure, message) => ({ failure, endpoint, attempts: answer.attempts, message });
  if (answer.network) return failed({ tag: 'network' }, answer.network);
  const { status } = answer;
  if (status < 200 || status > 299) {
    const message =
      status === 401 ? 'the Customer API rejected the token (HTTP 401); check the token this host was given' : `HTTP ${status}`;
    return failed({ tag: 'http-status', val: status }, message);
  }
  if (answer.tooLarge) return failed({ tag: 'too-large' }, 'the response is larger than 64 MiB; refused it');
  return null;
}

/** The records of `{"<envelope>": [...]}`, each as `{ id, json }` with a bigint id. */
/** A page of tests (or one test by id) as the engine sees it. */
function testsPage(tests) {
  return {
    tests: tests.map((t) => ({
      id: t.id,
      endAt: parseInstant(t.json.end_at),
      status: typeof t.json.status === 'string' ? t.json.status : '',
    })),
    body: new Payload('tests', tests),
  };
}

/** The records of `{"<envelope>": [...]}`, or of `{"<envelope>": {...}}` (one record by id). */
function records(body, envelope) {
  let parsed;
  try {
    parsed = JSON.parse(body);
  } catch (error) {
    throw new ShapeError(error.message);
  }
  const found = parsed?.[envelope];
  const list = found !== null && typeof found === 'object' && !Array.isArray(found) ? [found] : found;
  if (!Array.isArray(list)) throw new ShapeError(`no "${envelope}" list`);
  return list.map((json, i) => ({ id: recordId(json?.id, `${envelope}[${i}].id`), json }));
}

function recordId(value, where) {
  if (!Number.isSafeInteger(value) || value < 0) throw new ShapeError(`${where} is not an id`);
  return BigInt(value);
}

function optionalId(value) {
  return Number.isSafeInteger(value) && value >= 0 ? BigInt(value) : undefined;
}

function productSummary({ id, json }) {
  const sectionIds = (field) =>
    BigUint64Array.from(json[field] ?? [], (section, i) => recordId(section?.id, `product ${id} ${field}[${i}].id`));
  return {
    id,
    name: typeof json.name === 'string' ? json.name : 'Untitled Product',
    sectionIds: sectionIds('sections'),
    sectionsWithDefaultIds: sectionIds('sections_with_default'),
  };
}
