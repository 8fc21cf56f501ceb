/** The webview side of the VS Code API, typed with the one protocol. */
import type { FromWebview, ToWebview, WebviewRequest } from '../protocol/messages';
import { RequestTracker, type WithoutId } from '../protocol/requests';

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

const requests = new RequestTracker<WebviewRequest>((msg) => post(msg));

/** Sends a request; resolves with the extension's reply to it (several may be in flight). */
export function request<T = unknown>(msg: WithoutId<WebviewRequest>): Promise<T> {
  return requests.request<T>(msg);
}

/** Listens for messages from the extension (only from the host frame); replies settle requests. */
export function onMessage(handler: (msg: ToWebview) => void): void {
  window.addEventListener('message', (e: MessageEvent) => {
    const data = e.data as ToWebview | undefined;
    if (!data || typeof data !== 'object' || typeof (data as { type?: unknown }).type !== 'string') return;
    if (data.type === 'reply') {
      requests.settle(data);
      return;
    }
    handler(data);
  });
}
