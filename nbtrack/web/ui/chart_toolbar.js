// The charts' toolbar: the x axis (step, runtime, wall time, and the step metrics the runs
// declared, as W&B offers "trainer/global_step"), the y scale (linear, log), the
// smoothing slider, the choice of charts shown, and "Reset zoom". It is built once and updated in
// place (update(state)), so a slider being dragged or the chart menu being open survive a live
// page's redraws; it only reports the user's choices through its callbacks.
import { h, fill } from "./dom.js";
import { X_AXES } from "./routes.js";
import { MAX_WEIGHT } from "./smoothing.js";
import { Y_SCALES } from "./chart_settings.js";

const Y_LABELS = { linear: "Linear", log: "Log" };

/** The smoothing weight as the slider's label says it: "off", or the weight ("0.60"). */
export function smoothingText(weight) {
  return weight > 0 ? weight.toFixed(2) : "off";
}

function segmentButtons(options, attribute, onPick) {
  return options.map(([value, text]) => h("button", { type: "button", "aria-pressed": "false", [`data-${attribute}`]: value, on: { click: () => onPick(value) } }, text));
}

function segmented(label, options, attribute, onPick) {
  return h("div", { class: "segmented", role: "group", "aria-label": label }, segmentButtons(options, attribute, onPick));
}

function press(group, attribute, value) {
  for (const button of group.querySelectorAll("button")) button.setAttribute("aria-pressed", String(button.getAttribute(`data-${attribute}`) === value));
}

/**
 * callbacks: onX(field), onReset(), onYScale(scale), onSmoothing(weight), onShow(key, shown),
 * onShowAll(). Returns {node, update(state), showError(node | null), destroy()} where state is
 * {x, axes (the step metrics offered besides X_AXES), zoomed, yScale, smoothing, keys (every
 * chart's key, in order), hidden (a Set)}.
 */
export function createChartToolbar({ onX, onReset, onYScale, onSmoothing, onShow, onShowAll }) {
  let state = { x: "_step", yScale: "linear" };
  const pickX = (field) => field !== state.x && onX(field);
  const axes = segmented("X axis", X_AXES, "x", pickX);
  const scales = segmented("Y axis", Y_SCALES.map((scale) => [scale, Y_LABELS[scale]]), "y-scale", (scale) => scale !== state.yScale && onYScale(scale));
  const weight = h("output", { class: "smoothing-value", "aria-live": "polite" });
  const slider = h("input", {
    type: "range",
    class: "smoothing",
    min: "0",
    max: String(MAX_WEIGHT),
    step: "0.01",
    value: "0",
    "aria-label": "Smoothing",
    title: "Exponential moving average (debiased, as TensorBoard's): the raw line stays faint behind",
    on: {
      input: () => {
        const value = Number(slider.value);
        weight.textContent = smoothingText(value);
        onSmoothing(value);
      },
    },
  });
  const reset = h("button", { type: "button", class: "button", disabled: true, on: { click: () => onReset() } }, "Reset zoom");
  const hint = h("span", { class: "muted hint" });
  const chooserSummary = h("summary", { class: "button" });
  const chooserList = h("div", { class: "chart-chooser-list", role: "group", "aria-label": "Charts shown" });
  const showAll = h("button", { type: "button", class: "button small", on: { click: () => onShowAll() } }, "Show all");
  const chooser = h("details", { class: "chart-chooser" }, chooserSummary, h("div", { class: "chart-chooser-menu" }, showAll, chooserList));
  const error = h("div", { class: "chart-error" });
  const node = h(
    "div",
    { class: "chart-toolbar" },
    h("span", { class: "toolbar-label muted" }, "X axis"),
    axes,
    h("span", { class: "toolbar-label muted" }, "Y axis"),
    scales,
    h("label", { class: "smoothing-label" }, h("span", { class: "toolbar-label muted" }, "Smoothing"), slider, weight),
    chooser,
    reset,
    hint,
    error,
  );

  // The menu closes as menus do: a click elsewhere, or Escape (focus back on its button).
  const closeOutside = (event) => {
    if (chooser.open && !chooser.contains(event.target)) chooser.open = false;
  };
  const closeOnEscape = (event) => {
    if (event.key === "Escape" && chooser.open) {
      chooser.open = false;
      chooserSummary.focus();
    }
  };
  document.addEventListener("pointerdown", closeOutside);
  document.addEventListener("keydown", closeOnEscape);

  function renderChooser(keys, hidden) {
    const shown = keys.filter((key) => !hidden.has(key)).length;
    chooserSummary.textContent = `Charts ${shown} of ${keys.length}`;
    showAll.disabled = shown === keys.length;
    // Rebuilt only when the keys or what is hidden changed: a click on a box keeps its focus.
    const signature = JSON.stringify([keys, [...hidden].sort()]);
    if (chooserList.dataset.signature === signature) return;
    const focused = chooserList.contains(document.activeElement) ? document.activeElement.dataset.key : null;
    chooserList.dataset.signature = signature;
    fill(
      chooserList,
      keys.map((key) =>
        h(
          "label",
          { class: "check" },
          h("input", { type: "checkbox", checked: !hidden.has(key), dataset: { key }, on: { change: (event) => onShow(key, event.target.checked) } }),
          ` ${key}`,
        ),
      ),
    );
    if (focused !== null) [...chooserList.querySelectorAll("input")].find((box) => box.dataset.key === focused)?.focus();
  }

  return {
    node,
    update(next) {
      state = next;
      // A step metric is a button of its own, after the built-in axes (rebuilt only when they change).
      const offered = [...(next.axes || [])];
      if (!X_AXES.some(([field]) => field === next.x) && !offered.includes(next.x)) offered.push(next.x);
      const signature = JSON.stringify(offered);
      if (axes.dataset.signature !== signature) {
        axes.dataset.signature = signature;
        fill(axes, segmentButtons([...X_AXES, ...offered.map((field) => [field, field])], "x", pickX));
      }
      press(axes, "x", next.x);
      press(scales, "y-scale", next.yScale);
      if (Number(slider.value) !== next.smoothing && document.activeElement !== slider) slider.value = String(next.smoothing);
      weight.textContent = smoothingText(next.smoothing);
      reset.disabled = !next.zoomed;
      hint.textContent = next.zoomed ? "Zoomed: double-click a chart to see the whole run" : "Drag across a chart to zoom";
      renderChooser(next.keys, next.hidden);
    },
    showError(box) {
      fill(error, box);
    },
    destroy() {
      document.removeEventListener("pointerdown", closeOutside);
      document.removeEventListener("keydown", closeOnEscape);
    },
  };
}
