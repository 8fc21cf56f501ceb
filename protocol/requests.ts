/**
 * Requests and their replies, one scheme for both channels (extension -> engine process,
 * webview -> extension), after vscode-hexeditor's MessageHandler: each request gets the next
 * id of its sender, the answer is a `reply` whose `inReplyTo` names it, so any number of
 * requests can be in flight and each caller gets its own answer.
 */
import type { GenericSchema } from 'valibot';
import type { Reply } from './messages';
import type { LoadProgress } from './progress';
import { parse } from './schema-kit';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  schema?: GenericSchema;
  onProgress?: (message: string, fraction?: number, load?: LoadProgress) => void;
}

/** A request as its sender writes it: the tracker adds the id (distributes over unions). */
export type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

export class RequestTracker<Req extends { id: number }> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  /** `send` posts a request; it may throw (the request then rejects). */
  constructor(private readonly send: (msg: Req) => void) {}

  /** A fresh id (also for messages that expect no reply, e.g. a shutdown). */
  newId(): number {
    return this.nextId++;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Sends `msg` with a fresh id; resolves with the reply's result (checked against `schema`
   * when given: the other side is untrusted), rejects with its error.
   */
  request<T>(msg: WithoutId<Req>, opts: { schema?: GenericSchema; onProgress?: Pending['onProgress'] } = {}): Promise<T> {
    const id = this.newId();
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, schema: opts.schema, onProgress: opts.onProgress });
      try {
        this.send({ ...msg, id } as unknown as Req);
      } catch (e) {
        this.fail(id, e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  /** Settles the request a reply names; false when no request is waiting for it. */
  settle(reply: Reply): boolean {
    const p = this.pending.get(reply.inReplyTo);
    if (!p) return false;
    this.pending.delete(reply.inReplyTo);
    if (!reply.ok) {
      p.reject(new Error(reply.error));
    } else if (p.schema && reply.result !== undefined) {
      const r = parse(p.schema, reply.result, 'result');
      if (r.ok) p.resolve(r.value);
      else p.reject(new Error(`invalid reply: ${r.error}`));
    } else {
      p.resolve(reply.result);
    }
    return true;
  }

  /** Progress of a request still in flight. */
  progress(inReplyTo: number, message: string, fraction?: number, load?: LoadProgress): void {
    this.pending.get(inReplyTo)?.onProgress?.(message, fraction, load);
  }

  /** Rejects one request (its message could not be sent). */
  fail(id: number, err: Error): boolean {
    const p = this.pending.get(id);
    if (!p) return false;
    this.pending.delete(id);
    p.reject(err);
    return true;
  }

  /** Rejects every request in flight (the other side went away). */
  rejectAll(err: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
  }
}

/** The reply to request `id` (the answering side). */
export function replyTo(id: number, outcome: { ok: true; result?: unknown } | { ok: false; error: string }): Reply {
  return outcome.ok ? { type: 'reply', inReplyTo: id, ok: true, result: outcome.result } : { type: 'reply', inReplyTo: id, ok: false, error: outcome.error };
}
