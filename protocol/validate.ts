/**
 * The validators of every message that crosses a boundary: each is its schema (messages.ts)
 * run through `parse`, which returns a fresh value (never the input) and never throws. A
 * webview is untrusted; so are the engine process (it hosts native code) and trace files.
 */
import * as M from './messages';
import { parse, type Result } from './schema-kit';

export type { Result } from './schema-kit';

export const validateFromWebview = (msg: unknown): Result<M.FromWebview> => parse(M.FromWebview, msg, 'message');
export const validateEngineMessage = (msg: unknown): Result<M.EngineMessage> => parse(M.EngineMessage, msg, 'message');
export const validateEngineRequest = (msg: unknown): Result<M.EngineRequest> => parse(M.EngineRequest, msg, 'request');
export const validateRunConfig = (v: unknown): Result<M.RunConfig> => parse(M.RunConfig, v, 'config');
export const validateEngineEvents = (v: unknown): Result<M.EngineEvent[]> => parse(M.EngineEvents, v, 'events');
export const validateInspectResult = (v: unknown): Result<M.InspectResult> => parse(M.InspectResult, v, 'result');
export const validateModelSummary = (v: unknown): Result<M.ModelSummary> => parse(M.ModelSummary, v, 'model');

/** Parses one line of a trace file (JSON Lines); typed arrays come back as typed arrays. */
export function parseTraceLine(line: string, lineNo = 1): Result<M.TraceLine> {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    return { ok: false, error: `line ${lineNo}: not JSON (${e instanceof Error ? e.message : String(e)})` };
  }
  const r = parse(M.TraceLine, v, 'line');
  return r.ok ? r : { ok: false, error: `line ${lineNo}: ${r.error}` };
}

/** JSON for a trace line: typed arrays become plain arrays. */
export function stringifyTraceLine(line: M.TraceLine): string {
  return JSON.stringify(line, (_k, v: unknown) => (ArrayBuffer.isView(v) && !(v instanceof DataView) ? Array.from(v as unknown as ArrayLike<number>) : v));
}
