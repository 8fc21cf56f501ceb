// What the webview benchmarks (bench-views, bench-ui-latency) share: the dark theme's
// variables as VS Code sets them, and Debian's headless Chromium through playwright-core.
import { chromium } from 'playwright-core';

const DARK_VARS = {
  '--vscode-editor-background': '#1e1e1e', '--vscode-editor-foreground': '#d4d4d4', '--vscode-foreground': '#cccccc',
  '--vscode-focusBorder': '#007fd4', '--vscode-widget-border': '#454545', '--vscode-editorWarning-foreground': '#cca700',
  '--vscode-font-family': 'sans-serif', '--vscode-font-size': '13px', '--vscode-editor-font-family': 'monospace', '--vscode-editor-font-size': '13px',
};

/** The dark theme as CSS declarations ("--name: value; ..."), for a webview document's html rule. */
export const DARK_THEME_CSS = Object.entries(DARK_VARS).map(([k, v]) => `${k}: ${v};`).join(' ');

/** Headless Chromium (HOGWILD_CHROMIUM, else /usr/bin/chromium) that may load file:// bundles. */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.HOGWILD_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--allow-file-access-from-files'],
  });
}
