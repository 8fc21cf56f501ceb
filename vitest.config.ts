import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The webview's palette check is fast and pure; the browser tests of the panel have their
    // own config (vitest.webview.config.ts, npm run test:webview).
    include: ['test/unit/**/*.test.ts', 'test/webview/palette.test.ts'],
    environment: 'node',
    // Loading the real Qwen3 tokenizer (11 MB of JSON) and running the engine on the CPU
    // take seconds, not milliseconds.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    // Native engine tests load models; keep runs in separate forks so that a crash in the
    // addon fails one file instead of the whole run.
    pool: 'forks',
    reporters: ['default'],
  },
});
