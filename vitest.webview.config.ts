import { defineConfig } from 'vitest/config';

// The run panel in headless Chromium (test/webview): npm run test:webview. A browser per file;
// pixels are read back from the canvases, so these take seconds per test.
export default defineConfig({
  test: {
    include: ['test/webview/**/*.test.ts'],
    environment: 'node',
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
