// A tiny engine host for the engine client's state-machine tests: it speaks the protocol over
// IPC like dist/engine-host.js but has no model. FAKE_MODE picks a misbehaviour.
const mode = process.env.FAKE_MODE || 'normal';
const send = (m) => process.send && process.connected && process.send(m);
const timers = new Map();

if (mode === 'exit-at-start') process.exit(3);
if (mode === 'garbage') send({ type: 'nonsense', x: 1 });

process.on('message', (req) => {
  switch (req.type) {
    case 'load':
      if (req.modelDir === 'slow') {
        send({ type: 'progress', id: req.id, message: 'loading slowly', fraction: 0.1 });
        return; // never answers: the test cancels
      }
      if (req.modelDir === 'missing') {
        send({ type: 'reply', id: req.id, ok: false, error: `${req.modelDir}/config.json: no such file` });
        return;
      }
      send({ type: 'progress', id: req.id, message: 'half way', fraction: 0.5 });
      send({ type: 'loaded', model: { dir: req.modelDir, arch: 'Fake', layers: 1, hidden: 8, heads: 1, kvHeads: 1, vocab: 10, maxContext: 100, device: 'cpu', builtIn: false } });
      send({ type: 'reply', id: req.id, ok: true, result: { dir: req.modelDir, arch: 'Fake', layers: 1, hidden: 8, heads: 1, kvHeads: 1, vocab: 10, maxContext: 100, device: 'cpu', builtIn: false } });
      return;
    case 'start': {
      send({ type: 'reply', id: req.id, ok: true });
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
        send({ type: 'reply', id: req.id, ok: true });
        send({ type: 'run-ended', runId: req.runId, state: 'stopped' });
      } else if (req.control.type === 'fork') {
        send({ type: 'reply', id: req.id, ok: false, error: 'fork: worker 9 does not exist' });
      } else {
        send({ type: 'reply', id: req.id, ok: true });
      }
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
