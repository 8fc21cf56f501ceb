/**
 * The engine process runs below normal scheduling priority. It computes flat out, and the
 * editor must stay responsive beside it: in VS Code every webview shares the workbench's
 * renderer thread, and on 2 cores a run streaming at full speed left the Workers view and a
 * Pause seconds behind (issue 10). Below normal, the engine still gets every core nobody
 * else wants, so a run alone on the machine is as fast as before.
 *
 * On Linux a priority belongs to a thread, and a new thread takes its creator's: set here,
 * in the engine process's main thread before it makes any (the addon's compute threads, the
 * run loop, libuv's pool), it covers them all. HOGWILD_ENGINE_PRIORITY=normal leaves it.
 */
import * as os from 'node:os';

export type EnginePriority = 'below-normal' | 'normal';

export function enginePriorityOf(env: NodeJS.ProcessEnv): EnginePriority {
  const v = env['HOGWILD_ENGINE_PRIORITY'];
  if (v === undefined || v === '' || v === 'below-normal') return 'below-normal';
  if (v === 'normal') return 'normal';
  throw new Error(`HOGWILD_ENGINE_PRIORITY must be "below-normal" or "normal", not ${JSON.stringify(v)}`);
}

/** How far below its parent the engine runs: nice +10 (PRIORITY_BELOW_NORMAL from normal). */
export const BELOW_PARENT = 10;

/** Lowers this thread's priority (see above) relative to what it inherited; returns what it did, for the log. */
export function applyEnginePriority(env: NodeJS.ProcessEnv, setPriority: (pid: number, priority: number) => void = os.setPriority): string {
  const now = os.getPriority(0);
  if (enginePriorityOf(env) === 'normal') return `engine priority: ${now}, as inherited`;
  // Relative to the editor's own (already lowered, e.g. under `nice`, it stays below it);
  // 19 is the lowest there is.
  const p = Math.min(19, now + BELOW_PARENT);
  if (p !== now) setPriority(0, p);
  return `engine priority: ${p} (inherited ${now})`;
}
