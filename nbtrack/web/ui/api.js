// Talking to the server: GraphQL at /graphql, run files, and the API key.
//
// Every request says `X-Nbtrack-Client: ui`: the server then answers a missing or wrong key with a
// plain 401 and no WWW-Authenticate challenge, so the browser shows no native login dialog and the
// UI asks for the key itself (pages/key.js). The key lives in sessionStorage only: gone when the tab
// closes, never written to disk by us, and sent as HTTP Basic "api:<key>" like every other client.

const KEY_ITEM = "nbtrack.apiKey";

/** The server refused the request for want of a (valid) API key. */
export class AuthError extends Error {}

/** The server answered with an error: message is its own ("run x does not exist"). */
export class ApiError extends Error {
  constructor(message, code = "", status = 0) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

export function storedKey() {
  try {
    return sessionStorage.getItem(KEY_ITEM) || null;
  } catch {
    return null; // storage disabled: the key form will keep asking
  }
}

export function rememberKey(key) {
  sessionStorage.setItem(KEY_ITEM, key.trim());
}

export function forgetKey() {
  try {
    sessionStorage.removeItem(KEY_ITEM);
  } catch {
    // nothing stored
  }
}

function headers(extra = {}) {
  const result = { "X-Nbtrack-Client": "ui", ...extra };
  const key = storedKey();
  // btoa takes Latin-1 only; keys are ASCII, and anything else could never be valid anyway.
  if (key && /^[\x20-\x7e]+$/.test(key)) result.Authorization = `Basic ${btoa(`api:${key}`)}`;
  return result;
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not the server's error shape (a proxy's page): fall back on the status
  }
  const first = body && Array.isArray(body.errors) ? body.errors[0] : null;
  const code = first && first.extensions ? first.extensions.code || "" : "";
  const message = first && first.message ? String(first.message) : `the server answered ${response.status}`;
  if (response.status === 401 || code === "UNAUTHENTICATED") return new AuthError(message);
  return new ApiError(message, code, response.status);
}

/**
 * The data of a GraphQL query; AuthError without a valid key, ApiError for the server's errors
 * (the first one's message), TypeError when the server cannot be reached.
 */
export async function graphql(query, variables = {}, { signal } = {}) {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify({ query, variables }),
    signal,
  });
  if (!response.ok) throw await errorOf(response);
  const body = await response.json();
  if (Array.isArray(body.errors) && body.errors.length) {
    const first = body.errors[0];
    const code = (first.extensions && first.extensions.code) || "";
    if (code === "UNAUTHENTICATED") throw new AuthError(first.message);
    throw new ApiError(String(first.message), code, response.status);
  }
  return body.data;
}

/** A run file's contents (a Blob), fetched with the key: `path` is on this page's origin. */
export async function fetchFile(path, { signal } = {}) {
  const response = await fetch(path, { headers: headers(), signal });
  if (!response.ok) throw await errorOf(response);
  return response.blob();
}

/**
 * Downloads a run file. A link cannot carry the Authorization header, so the file is fetched with
 * it and saved from a blob URL. The server's URL is absolute (its own base URL); only its path is
 * used, on this page's origin, which is the same server (and what connect-src 'self' allows).
 */
export async function downloadFile(url, name) {
  const target = new URL(url, location.href);
  const response = await fetch(target.pathname + target.search, { headers: headers() });
  if (!response.ok) throw await errorOf(response);
  const blob = await response.blob();
  const href = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = href;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // Revoked later, not at once: the download reads the blob after click() returns.
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
}
