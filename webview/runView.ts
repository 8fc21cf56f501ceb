/**
 * The seam for further views of a run inside the panel (the cache map on a Canvas 2D and the
 * attention heatmap come in a later issue). A view gets a host element in the panel's
 * "insights" section and is told about every change of the run model, after the lanes.
 */
import type { RunChanges, RunModel } from '../extension/runModel';
import type { InspectResult, ToWebview } from '../protocol/messages';

export interface RunView {
  readonly id: string;
  readonly title: string;
  /** Called once with an empty element that the view owns. */
  mount(host: HTMLElement, api: RunViewApi): void;
  /** Called (at most once per frame) after the model changed; `changes` says what. */
  update(model: RunModel, changes: RunChanges): void;
  /** Messages from the extension that are not run events and answer no request. */
  onMessage?(msg: ToWebview): void;
  dispose(): void;
}

export interface RunViewApi {
  /** Asks the extension to inspect a cache position (the reply is paired with this request). */
  inspect(block: number, index: number): Promise<InspectResult>;
}

/** Views registered here appear in the panel; none yet. */
export const runViews: (() => RunView)[] = [];
