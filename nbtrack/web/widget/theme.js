// The notebook widgets' colours and font (the live panel's and the explorer's), defined once.
//
// Colours come from the Jupyter theme when there is one, then VS Code's, then fallbacks that
// follow the OS colour scheme. Bundling contract (esm.py inlines it into each widget's module):
// no import, and only `export function NAME` / `export const NAME`.

/** The CSS that gives `.${rootClass}` the widgets' theme variables (--nbt-fg, --nbt-accent, ...),
 * font and frame. */
export function themeCss(rootClass) {
  return `
.${rootClass} {
  --nbt-fg: var(--jp-ui-font-color0, var(--vscode-editor-foreground, #1f2328));
  --nbt-muted: var(--jp-ui-font-color2, var(--vscode-descriptionForeground, #656d76));
  --nbt-bg: var(--jp-layout-color1, var(--vscode-editor-background, #ffffff));
  --nbt-card: var(--jp-layout-color2, rgba(127, 127, 127, 0.08));
  --nbt-border: var(--jp-border-color2, rgba(127, 127, 127, 0.3));
  --nbt-grid: var(--jp-border-color3, rgba(127, 127, 127, 0.18));
  --nbt-accent: var(--jp-brand-color1, #3b82f6);
  --nbt-ok: var(--jp-success-color1, #22a06b);
  --nbt-warn: var(--jp-warn-color1, #d69e2e);
  --nbt-err: var(--jp-error-color1, #e5484d);
  --nbt-neutral: var(--jp-ui-font-color3, #8b949e);
  font-family: var(--jp-ui-font-family, system-ui, -apple-system, "Segoe UI", sans-serif);
  font-size: var(--jp-ui-font-size1, 13px);
  color: var(--nbt-fg);
  background: var(--nbt-bg);
  border: 1px solid var(--nbt-border);
  border-radius: 6px;
  padding: 8px 10px;
  max-width: 960px;
  box-sizing: border-box;
}
@media (prefers-color-scheme: dark) {
  .${rootClass} {
    --nbt-fg: var(--jp-ui-font-color0, var(--vscode-editor-foreground, #e6edf3));
    --nbt-muted: var(--jp-ui-font-color2, var(--vscode-descriptionForeground, #8b949e));
    --nbt-bg: var(--jp-layout-color1, var(--vscode-editor-background, #0d1117));
  }
}
.${rootClass} * { box-sizing: border-box; }
.${rootClass} [hidden] { display: none !important; }
`;
}
