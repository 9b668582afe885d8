// A test's `end_at` as the WIT `end-time`: ISO 8601 date-times, with an offset or without
// one (taken as UTC, as the API documents UTC times), become milliseconds since the epoch.

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$/i;

export function parseInstant(value) {
  if (value === undefined || value === null) return { tag: 'missing' };
  if (typeof value !== 'string') return { tag: 'unparsable', val: JSON.stringify(value) };
  const text = value.trim();
  if (text === '') return { tag: 'missing' };
  const match = ISO_DATE_TIME.exec(text);
  const millis = match ? Date.parse(match[2] ? text : `${text}Z`) : NaN;
  return Number.isNaN(millis) ? { tag: 'unparsable', val: text } : { tag: 'at', val: BigInt(millis) };
}
