/**
 * The binary shard of cache-format runs (cacheRuns.ts) that scripts/train/train.py reads
 * (load_cache_shards there). Per token, in each run's block order: ids.u16, blk.u16 (block
 * index in the run), bidx.u16 (index in the block), fwd.u16 (the run's forward that computed
 * it), tgt.u16 (the target its query is trained on, 65535: none), wt.u8 (1 target, 2 claim).
 * Per run: offsets.u32 (token starts, runs + 1 entries) and foff.u32 (forward starts). Per
 * forward: soff.u32 (segment starts, forwards + 1 entries). Per segment: seg.u16 (block, off, len).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CacheRun } from './cacheRuns';

const NONE = 65535;

export class CacheShardWriter {
  private readonly ids: number[] = [];
  private readonly blk: number[] = [];
  private readonly bidx: number[] = [];
  private readonly fwd: number[] = [];
  private readonly tgt: number[] = [];
  private readonly wt: number[] = [];
  private readonly offsets: number[] = [0];
  private readonly foff: number[] = [0];
  private readonly soff: number[] = [0];
  private readonly seg: number[] = [];
  private forwards = 0;
  runs = 0;

  add(run: CacheRun): void {
    // Which forward computed each token: the forward that wrote it (its block, past the view's earlier length).
    const by = run.blocks.map((b) => b.map(() => -1));
    const had = run.blocks.map(() => 0);
    run.forwards.forEach((f, fi) => {
      const len = f.view[f.view.length - 1].len;
      for (let i = had[f.block]; i < len; i++) by[f.block][i] = fi;
      had[f.block] = Math.max(had[f.block], len);
      for (const s of f.view) this.seg.push(s.block, s.off, s.len);
      this.soff.push(this.seg.length / 3);
    });
    run.blocks.forEach((block, b) => {
      block.forEach((id, i) => {
        if (by[b][i] < 0) throw new Error(`cache shard: block ${b} token ${i} is computed by no forward`);
        if (id >= NONE || b >= NONE || i >= NONE) throw new Error(`cache shard: id ${id}, block ${b} or index ${i} does not fit 16 bits`);
        this.ids.push(id);
        this.blk.push(b);
        this.bidx.push(i);
        this.fwd.push(by[b][i]);
        this.tgt.push(run.targets[b][i] >= 0 ? run.targets[b][i] : NONE);
        this.wt.push(run.weights[b][i]);
      });
    });
    this.forwards += run.forwards.length;
    this.offsets.push(this.ids.length);
    this.foff.push(this.forwards);
    this.runs++;
  }

  get tokens(): number {
    return this.ids.length;
  }

  write(dir: string): void {
    fs.mkdirSync(dir, { recursive: true });
    const put = (name: string, a: Uint8Array | Uint16Array | Uint32Array) => fs.writeFileSync(path.join(dir, name), a);
    put('ids.u16', Uint16Array.from(this.ids));
    put('blk.u16', Uint16Array.from(this.blk));
    put('bidx.u16', Uint16Array.from(this.bidx));
    put('fwd.u16', Uint16Array.from(this.fwd));
    put('tgt.u16', Uint16Array.from(this.tgt));
    put('wt.u8', Uint8Array.from(this.wt));
    put('offsets.u32', Uint32Array.from(this.offsets));
    put('foff.u32', Uint32Array.from(this.foff));
    put('soff.u32', Uint32Array.from(this.soff));
    put('seg.u16', Uint16Array.from(this.seg));
  }
}
