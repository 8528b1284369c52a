// Artifact values as the pages show them (pure: node's tests cover it).
import { LATEST_ALIAS } from "../shared/vocabulary.js";
import { naturalCompare } from "./model.js";

/** Unix seconds of an ISO 8601 time (the artifact schema's createdAt); null if it is none. */
export function isoSeconds(text) {
  const ms = typeof text === "string" ? Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`) : NaN;
  return Number.isFinite(ms) ? ms / 1000 : null;
}

/** "v3" for a version's number; "" for none (a version not committed yet). */
export function versionTag(index) {
  return Number.isInteger(index) ? `v${index}` : "";
}

/** The alias names of a version ({aliases: [{alias}]}), `latest` first, the others as given. */
export function aliasNames(version) {
  const names = (version.aliases || []).map((alias) => alias.alias);
  return [...names.filter((name) => name === LATEST_ALIAS), ...names.filter((name) => name !== LATEST_ALIAS)];
}

/**
 * A version's metadata as [key, value] rows: nested objects spread into dotted keys
 * ({"train": {"rows": 5}} → ["train.rows", 5]) down to MAX_DEPTH, lists kept whole, keys in
 * natural order. An empty object inside stays a row of its own ({}), so no key disappears.
 */
export const MAX_DEPTH = 4;

export function metadataEntries(metadata) {
  const rows = [];
  const walk = (value, prefix, depth) => {
    const spread = value !== null && typeof value === "object" && !Array.isArray(value) && depth < MAX_DEPTH && Object.keys(value).length > 0;
    if (!spread) return rows.push([prefix, value]);
    for (const [key, inner] of Object.entries(value)) walk(inner, prefix ? `${prefix}.${key}` : key, depth + 1);
  };
  if (metadata !== null && typeof metadata === "object" && !Array.isArray(metadata)) {
    for (const [key, value] of Object.entries(metadata)) walk(value, key, 1);
  } else if (metadata !== null && metadata !== undefined) {
    rows.push(["(value)", metadata]);
  }
  return rows.sort(([a], [b]) => naturalCompare(a, b));
}

/** The short form of a digest for a table cell; the whole one goes in its title. */
export function shortDigest(digest) {
  return typeof digest === "string" && digest.length > 16 ? `${digest.slice(0, 12)}…` : digest || "";
}

/**
 * The URI a file of a version points to when it is a reference (W&B's add_reference: file://,
 * s3://, ...), whose bytes the server does not keep: its url is that URI, not a download URL of
 * the server's (http(s) or a path). null for a stored file.
 */
export function referenceOf(file) {
  const url = file && typeof file.url === "string" ? file.url : "";
  return url && !/^(https?:\/\/|\/)/i.test(url) ? url : null;
}
