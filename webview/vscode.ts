/** The webview side of the VS Code API, typed with the one protocol. */
import type { FromWebview, ToWebview } from '../extension/protocol';

interface VsCodeApi<S> {
  postMessage(msg: FromWebview): void;
  getState(): S | undefined;
  setState(state: S): void;
}

declare function acquireVsCodeApi<S>(): VsCodeApi<S>;

let api: VsCodeApi<unknown> | null = null;

export function vscodeApi<S>(): VsCodeApi<S> {
  if (!api) api = acquireVsCodeApi<unknown>();
  return api as VsCodeApi<S>;
}

export function post(msg: FromWebview): void {
  vscodeApi().postMessage(msg);
}

/** Listens for messages from the extension (only from the host frame). */
export function onMessage(handler: (msg: ToWebview) => void): void {
  window.addEventListener('message', (e: MessageEvent) => {
    const data = e.data as ToWebview | undefined;
    if (!data || typeof data !== 'object' || typeof (data as { type?: unknown }).type !== 'string') return;
    handler(data);
  });
}
