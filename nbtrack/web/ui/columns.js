// Which of a project's runs-table columns are shown (pure, but for the storage it is handed: node's
// tests cover it). The choice is kept per project in localStorage as the columns left out, so a
// config key or a metric that appears later is shown until someone hides it; "name" always shows.

const ITEM_PREFIX = "nbtrack.columns:";
export const ALWAYS_SHOWN = "name";

function itemOf(entity, project) {
  return `${ITEM_PREFIX}${entity}/${project}`;
}

/** The column ids hidden for a project: a Set, empty when nothing is kept or what is kept is unreadable. */
export function loadHidden(storage, entity, project) {
  try {
    const kept = JSON.parse(storage.getItem(itemOf(entity, project)) || "[]");
    return new Set(Array.isArray(kept) ? kept.filter((id) => typeof id === "string" && id !== ALWAYS_SHOWN) : []);
  } catch {
    return new Set(); // storage disabled or a damaged item: every column shows
  }
}

/** Keeps the hidden column ids of a project (none: the item is removed). False when storage refused. */
export function saveHidden(storage, entity, project, hidden) {
  try {
    if (hidden.size === 0) storage.removeItem(itemOf(entity, project));
    else storage.setItem(itemOf(entity, project), JSON.stringify([...hidden].sort()));
    return true;
  } catch {
    return false;
  }
}

/** The columns to draw, in their order: those not hidden ("name" whatever is kept). */
export function shownColumns(columns, hidden) {
  return columns.filter((column) => column.id === ALWAYS_SHOWN || !hidden.has(column.id));
}

/** hidden with column id shown (visible true) or left out (false): a new Set. */
export function withColumn(hidden, id, visible) {
  const next = new Set(hidden);
  if (visible || id === ALWAYS_SHOWN) next.delete(id);
  else next.add(id);
  return next;
}
