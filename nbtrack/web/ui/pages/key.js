// The API key form, shown when the server answers 401: the key is kept for this tab only
// (sessionStorage, api.js) and the page that asked is rendered again with it.
import { rememberKey } from "../api.js";
import { fill, h } from "../dom.js";

export function keyForm(into, { rejected, message, onKey }) {
  const input = h("input", {
    id: "api-key",
    type: "password",
    name: "key",
    autocomplete: "current-password",
    required: true,
    "aria-describedby": "api-key-help",
  });
  const form = h(
    "form",
    {
      class: "key-form card",
      on: {
        submit: (event) => {
          event.preventDefault();
          const key = input.value.trim();
          if (!key) return;
          rememberKey(key);
          onKey();
        },
      },
    },
    h("h1", {}, "API key"),
    h(
      "p",
      { id: "api-key-help" },
      "This server needs an API key. Create one on the server's machine with ",
      h("code", {}, "nbtrack server key create ENTITY"),
      ". It is kept in this tab only, until the tab is closed.",
    ),
    rejected ? h("p", { class: "notice error", role: "alert" }, `That key was not accepted${message ? `: ${message}` : "."}`) : null,
    h("label", { for: "api-key" }, "Key"),
    h("div", { class: "key-row" }, input, h("button", { type: "submit", class: "button primary" }, "Continue")),
  );
  fill(into, form);
  input.focus();
}
