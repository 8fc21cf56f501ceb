import { defineConfig } from 'vitest/config';

// The run panel and the sidebar in headless Chromium (test/webview): `npm test` runs them as
// its webview stage (`npm test -- --only webview`; `npm run test:webview` builds first). One
// browser per file, files one after the other: on a loaded 2-core machine two Chromiums
// would only slow each other down. A test takes a few seconds; the limits leave room for a
// slow machine without letting a hang cost minutes.
export default defineConfig({
  test: {
    include: ['test/webview/**/*.test.ts'],
    // The palette check is pure (no browser): the unit stage runs it.
    exclude: ['test/webview/palette.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
    reporters: ['default'],
  },
});
