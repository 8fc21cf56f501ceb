/**
 * Run traces: JSON Lines of everything the engine reported (protocol.ts, TraceLine). The
 * recorder keeps the lines in memory and, when given a file, appends them as they come, so
 * a trace survives the engine dying mid-run (and the window reloading). `readTrace` parses
 * and validates a file for replay without the engine.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseTraceLine, stringifyTraceLine } from '../protocol/validate';
import type { EngineEvent, RunState, TraceBatch, TraceEnd, TraceHeader } from '../protocol/messages';

export class TraceRecorder {
  private readonly lines: string[] = [];
  private readonly t0 = Date.now();
  private fd: number | null = null;
  private ended = false;

  constructor(readonly header: TraceHeader, readonly file?: string) {
    this.push(stringifyTraceLine(header));
    if (file) {
      try {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        this.fd = fs.openSync(file, 'w');
        fs.writeSync(this.fd, this.lines[0] + '\n');
      } catch {
        this.fd = null; // the in-memory copy still works
      }
    }
  }

  private push(line: string): void {
    this.lines.push(line);
    if (this.fd !== null) {
      try {
        fs.writeSync(this.fd, line + '\n');
      } catch {
        this.closeFile();
      }
    }
  }

  get isEnded(): boolean {
    return this.ended;
  }

  add(events: EngineEvent[]): void {
    if (this.ended || events.length === 0) return;
    const line: TraceBatch = { type: 'events', t: Date.now() - this.t0, events };
    this.push(stringifyTraceLine(line));
  }

  end(state: RunState, message?: string): void {
    if (this.ended) return;
    const line: TraceEnd = { type: 'end', t: Date.now() - this.t0, state };
    if (message !== undefined) line.message = message;
    this.push(stringifyTraceLine(line));
    this.ended = true;
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
    return this.lines.join('\n') + '\n';
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

export async function readTrace(file: string): Promise<ParsedTrace> {
  const stat = await fs.promises.stat(file);
  if (stat.size > 512 * 1024 * 1024) throw new Error(`${file}: too large for a trace (${stat.size} bytes)`);
  return parseTrace(await fs.promises.readFile(file, 'utf8'), file);
}
