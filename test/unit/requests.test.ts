// Requests and replies (protocol/requests.ts): the one id scheme of the engine client and the
// webviews. Each reply settles the request it names, whatever the order of the answers.
import { describe, expect, it } from 'vitest';
import { RequestTracker, replyTo } from '../../protocol/requests';
import { InspectResult, type WebviewRequest } from '../../protocol/messages';
import { validateFromWebview } from '../../protocol/validate';

describe('RequestTracker', () => {
  it('matches replies to requests with two in flight, answered in reverse order', async () => {
    const sent: WebviewRequest[] = [];
    const t = new RequestTracker<WebviewRequest>((m) => sent.push(m));
    const a = t.request({ type: 'inspect', runId: 'r', block: 1, index: 0 });
    const b = t.request({ type: 'inspect', runId: 'r', block: 2, index: 0 });
    expect(sent.map((m) => m.id)).toEqual([1, 2]);
    // What the webview sent passes the extension's validator, id included.
    for (const m of sent) expect(validateFromWebview(m).ok).toBe(true);
    expect(t.inFlight).toBe(2);
    expect(t.settle(replyTo(sent[1]!.id, { ok: true, result: 'second' }))).toBe(true);
    expect(t.settle(replyTo(sent[0]!.id, { ok: true, result: 'first' }))).toBe(true);
    await expect(a).resolves.toBe('first');
    await expect(b).resolves.toBe('second');
    expect(t.inFlight).toBe(0);
    // A reply nobody waits for (a duplicate, or a stale id) is ignored.
    expect(t.settle(replyTo(sent[0]!.id, { ok: true }))).toBe(false);
  });

  it('an error reply rejects only its own request', async () => {
    const sent: WebviewRequest[] = [];
    const t = new RequestTracker<WebviewRequest>((m) => sent.push(m));
    const a = t.request({ type: 'command', command: 'open-log' });
    const b = t.request({ type: 'command', command: 'restart-engine' });
    t.settle(replyTo(sent[0]!.id, { ok: false, error: 'no log' }));
    t.settle(replyTo(sent[1]!.id, { ok: true }));
    await expect(a).rejects.toThrow('no log');
    await expect(b).resolves.toBeUndefined();
  });

  it('checks a result against its schema (the other side is untrusted)', async () => {
    const sent: WebviewRequest[] = [];
    const t = new RequestTracker<WebviewRequest>((m) => sent.push(m));
    const p = t.request({ type: 'inspect', runId: 'r', block: 1, index: 0 }, { schema: InspectResult });
    t.settle(replyTo(sent[0]!.id, { ok: true, result: { block: -1 } }));
    await expect(p).rejects.toThrow(/invalid reply: result.block/);
  });

  it('a send that throws rejects the request; rejectAll ends every request in flight', async () => {
    const t = new RequestTracker<WebviewRequest>(() => {
      throw new Error('channel closed');
    });
    await expect(t.request({ type: 'command', command: 'open-log' })).rejects.toThrow('channel closed');
    const sent: WebviewRequest[] = [];
    const t2 = new RequestTracker<WebviewRequest>((m) => sent.push(m));
    const ps = [t2.request({ type: 'command', command: 'open-log' }), t2.request({ type: 'command', command: 'open-log' })];
    t2.rejectAll(new Error('gone'));
    for (const p of ps) await expect(p).rejects.toThrow('gone');
  });
});
