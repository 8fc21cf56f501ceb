// A tiny engine host for the engine client's state-machine tests: it speaks the protocol over
// IPC like dist/engine-host.js but has no model. FAKE_MODE picks a misbehaviour.
const mode = process.env.FAKE_MODE || 'normal';
const send = (m) => process.send && process.connected && process.send(m);
const reply = (id, outcome) => send({ type: 'reply', inReplyTo: id, ...outcome });
const timers = new Map();

if (mode === 'exit-at-start') process.exit(3);
if (mode === 'garbage') send({ type: 'nonsense', x: 1 });

process.on('message', (req) => {
  switch (req.type) {
    case 'load':
      if (req.modelDir === 'slow') {
        send({ type: 'progress', inReplyTo: req.id, message: 'loading slowly', fraction: 0.1 });
        return; // never answers: the test cancels
      }
      if (req.modelDir === 'missing') {
        reply(req.id, { ok: false, error: `${req.modelDir}/config.json: no such file` });
        return;
      }
      send({ type: 'progress', inReplyTo: req.id, message: 'half way', fraction: 0.5 });
      send({ type: 'loaded', model: { dir: req.modelDir, arch: 'Fake', layers: 1, hidden: 8, heads: 1, kvHeads: 1, vocab: 10, maxContext: 100, device: 'cpu', builtIn: false } });
      reply(req.id, { ok: true, result: { dir: req.modelDir, arch: 'Fake', layers: 1, hidden: 8, heads: 1, kvHeads: 1, vocab: 10, maxContext: 100, device: 'cpu', builtIn: false } });
      return;
    case 'start': {
      reply(req.id, { ok: true });
      let step = 0;
      timers.set(
        req.runId,
        setInterval(() => {
          step++;
          send({ type: 'events', runId: req.runId, events: [{ type: 'tokens', worker: 0, step: 1, ids: new Int32Array([step]), text: 'x' }] });
        }, 5),
      );
      return;
    }
    case 'control':
      if (req.control.type === 'stop') {
        clearInterval(timers.get(req.runId));
        reply(req.id, { ok: true });
        send({ type: 'events', runId: req.runId, events: [{ type: 'run-state', state: 'stopped' }] });
      } else if (req.control.type === 'fork') {
        reply(req.id, { ok: false, error: 'fork: worker 9 does not exist' });
      } else {
        reply(req.id, { ok: true });
      }
      return;
    case 'inspect':
      // Answers out of order: the later request (smaller block) is answered first.
      setTimeout(() => reply(req.id, { ok: true, result: { block: req.block, index: req.index, token: 7, text: 'x', author: 0, step: 1, seenAt: [] } }), req.block === 1 ? 60 : 5);
      return;
    case 'shutdown':
      if (mode === 'ignore-shutdown') return;
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
if (mode !== 'no-ready') send({ type: 'ready', pid: process.pid });
if (mode === 'no-ready') setInterval(() => {}, 1000);
if (mode === 'ignore-shutdown') process.on('SIGTERM', () => {});
