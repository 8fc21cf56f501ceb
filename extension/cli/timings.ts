/**
 * HOGWILD_TIMINGS=1: where the seconds of a command go, as lines "hogwild: timing <what> <ms>"
 * on stderr, the time counted from the start of the process (benchmarks read them; off by
 * default).
 */
import { performance } from 'node:perf_hooks';

const on = !!process.env.HOGWILD_TIMINGS && process.env.HOGWILD_TIMINGS !== '0';

export function mark(what: string): void {
  if (on) process.stderr.write(`hogwild: timing ${what} ${performance.now().toFixed(0)} ms\n`);
}
