/**
 * Run traces: JSON Lines of everything the engine reported (protocol/messages.ts, TraceLine).
 * The recorder is the run's event log; with a file it appends every batch as it comes, so a
 * trace survives the engine dying mid-run (and the window reloading). `readTrace` parses and
 * validates a file for replay without the engine.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseTraceLine, stringifyTraceLine } from '../protocol/validate';
import type { EngineEvent, RunState, TraceBatch, TraceEnd, TraceHeader, TraceLine } from '../protocol/messages';

/**
 * The event log of one run, held once in the extension host: the batches as they came (a
 * late or restored panel is initialised from them), appended to a file as they come when
 * one is given. The JSON text is made only when the trace is saved.
 */
export class TraceRecorder {
  private readonly batches: TraceBatch[] = [];
  private endLine: TraceEnd | null = null;
  private readonly t0 = Date.now();
  private fd: number | null = null;

  constructor(readonly header: TraceHeader, readonly file?: string) {
    if (file) {
      try {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        this.fd = fs.openSync(file, 'w');
      } catch {
        this.fd = null; // the in-memory log still works
      }
    }
    this.write(header);
  }

  private write(line: TraceLine): void {
    if (this.fd === null) return;
    try {
      fs.writeSync(this.fd, stringifyTraceLine(line) + '\n');
    } catch {
      this.closeFile();
    }
  }

  get isEnded(): boolean {
    return this.endLine !== null;
  }

  add(events: EngineEvent[]): void {
    if (this.endLine || events.length === 0) return;
    const line: TraceBatch = { type: 'events', t: Date.now() - this.t0, events };
    this.batches.push(line);
    this.write(line);
  }

  /** Every event so far, in order. */
  events(): EngineEvent[] {
    return this.batches.flatMap((b) => b.events);
  }

  end(state: RunState, message?: string): void {
    if (this.endLine) return;
    const line: TraceEnd = { type: 'end', t: Date.now() - this.t0, state };
    if (message !== undefined) line.message = message;
    this.endLine = line;
    this.write(line);
    this.closeFile();
  }

  private closeFile(): void {
    if (this.fd !== null) {
      try {
        fs.closeSync(this.fd);
      } catch {
        /* ignore */
      }
      this.fd = null;
    }
  }

  text(): string {
    const lines: TraceLine[] = [this.header, ...this.batches, ...(this.endLine ? [this.endLine] : [])];
    return lines.map(stringifyTraceLine).join('\n') + '\n';
  }

  async saveTo(file: string): Promise<void> {
    await fs.promises.writeFile(file, this.text(), 'utf8');
  }

  dispose(): void {
    this.closeFile();
  }
}

export interface ParsedTrace {
  header: TraceHeader;
  batches: TraceBatch[];
  end: TraceEnd | null;
}

/** Parses a trace; throws an Error naming the file and the first bad line. */
export function parseTrace(text: string, name = 'trace'): ParsedTrace {
  const lines = text.split('\n');
  let header: TraceHeader | null = null;
  const batches: TraceBatch[] = [];
  let end: TraceEnd | null = null;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (raw === '') continue;
    const r = parseTraceLine(raw, i + 1);
    if (!r.ok) {
      // A trace cut off mid-line (the engine died while writing) keeps what came before.
      if (i === lines.length - 1 || (i === lines.length - 2 && lines[lines.length - 1]!.trim() === '')) {
        if (header) break;
      }
      throw new Error(`${name}: ${r.error}`);
    }
    const line = r.value;
    if (!header) {
      if (line.type !== 'hogwild-trace') throw new Error(`${name}: line ${i + 1}: not a Hogwild trace (the first line must be its header)`);
      header = line;
      continue;
    }
    if (line.type === 'hogwild-trace') throw new Error(`${name}: line ${i + 1}: a second trace header`);
    if (line.type === 'events') batches.push(line);
    else end = line;
  }
  if (!header) throw new Error(`${name}: empty file, not a Hogwild trace`);
  return { header, batches, end };
}

/** The largest trace file that is read (a trace is read whole). */
export const MAX_TRACE_BYTES = 512 * 1024 * 1024;

export async function readTrace(file: string): Promise<ParsedTrace> {
  const stat = await fs.promises.stat(file);
  if (stat.size > MAX_TRACE_BYTES) throw new Error(`${file}: too large for a trace (${stat.size} bytes)`);
  return parseTrace(await fs.promises.readFile(file, 'utf8'), file);
}
