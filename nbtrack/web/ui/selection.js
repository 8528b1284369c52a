// The runs picked on a project's page, shared by the table's checkboxes, the parallel-coordinates
// view and the scatter (pure: node's tests cover it). Whoever changes it, every view is told, so
// a run checked in the table lights up in both charts and a brushed range checks its rows.

/** A selection of run ids; onChange(fn) is called with the selection after every change. */
export function createSelection() {
  const ids = new Set();
  const listeners = [];
  const changed = () => {
    for (const listener of listeners) listener(selection);
  };
  const selection = {
    has: (id) => ids.has(id),
    get size() {
      return ids.size;
    },
    ids: () => [...ids],
    /** Replaces the selection with these ids. */
    set(next) {
      ids.clear();
      for (const id of next) ids.add(id);
      changed();
    },
    /** Adds (on) or removes (off) each of ids: one change, one notice. */
    mark(list, on) {
      for (const id of list) {
        if (on) ids.add(id);
        else ids.delete(id);
      }
      changed();
    },
    toggle(id) {
      selection.mark([id], !ids.has(id));
    },
    /** Drops ids no longer among `known` (runs gone after a refresh), quietly. */
    keepOnly(known) {
      for (const id of [...ids]) if (!known.has(id)) ids.delete(id);
    },
    onChange(listener) {
      listeners.push(listener);
    },
  };
  return selection;
}

/**
 * The ids of the marks inside every range: marks are [{id, at: {axisId: position}}] and ranges a
 * Map axisId -> [a, b] (either way round); a mark without a position on a ranged axis is outside.
 * No range: no id (a brush cleared selects nothing rather than everything).
 */
export function idsWithin(marks, ranges) {
  if (ranges.size === 0) return [];
  const bounds = [...ranges].map(([axis, [a, b]]) => [axis, Math.min(a, b), Math.max(a, b)]);
  return marks
    .filter((mark) =>
      bounds.every(([axis, lo, hi]) => {
        const position = mark.at[axis];
        return typeof position === "number" && Number.isFinite(position) && position >= lo && position <= hi;
      }),
    )
    .map((mark) => mark.id);
}
