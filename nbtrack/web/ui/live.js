// Polling for live runs. The next poll is scheduled only when the previous one has finished, so a
// slow server never has two of one page's polls in flight; a hidden tab does not poll at all (no
// load for nobody to see) and polls at once when shown again.

/**
 * Calls `tick()` (async) about every `interval` ms until it resolves to false or stop() is called.
 * A tick that throws is logged and polling goes on: a blip of the network must not end a live view.
 * Returns stop().
 */
export function startPolling(tick, interval = 1000) {
  let timer = 0;
  let busy = false;
  let stopped = false;

  function schedule() {
    if (!stopped && !document.hidden && !timer) timer = setTimeout(run, interval);
  }

  async function run() {
    timer = 0;
    if (stopped || busy) return;
    busy = true;
    let more = true;
    try {
      more = (await tick()) !== false;
    } catch (error) {
      console.warn("nbtrack: a live update failed; retrying", error);
    } finally {
      busy = false;
    }
    if (more) schedule();
    else stop();
  }

  function onVisibility() {
    if (document.hidden) {
      clearTimeout(timer);
      timer = 0;
    } else if (!busy) {
      run();
    }
  }

  function stop() {
    stopped = true;
    clearTimeout(timer);
    timer = 0;
    document.removeEventListener("visibilitychange", onVisibility);
  }

  document.addEventListener("visibilitychange", onVisibility);
  schedule();
  return stop;
}
