// ESLint (flat config) with typescript-eslint over the TypeScript of every bundle and the tests;
// `npm test` runs it (scripts/lint.mjs) and a finding fails the run. Rules that are turned off
// say why; nothing else is silenced.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['node_modules/**', 'dist/**', 'out/**', 'native/**', '.codeserver/**', '.test-artifacts/**', '.models/**', '.gpu/**'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['extension/**/*.ts', 'webview/**/*.ts', 'protocol/**/*.ts', 'test/**/*.ts', 'test/**/*.mjs', 'test/**/*.cjs', 'scripts/**/*.mjs', '*.mjs', '*.ts'],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: {
        // Node (extension host, engine process, CLIs, tests) and the browser (webviews).
        process: 'readonly', console: 'readonly', require: 'readonly', module: 'writable', __dirname: 'readonly', Buffer: 'readonly',
        setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', queueMicrotask: 'readonly',
        window: 'readonly', document: 'readonly', requestAnimationFrame: 'readonly', cancelAnimationFrame: 'readonly', getComputedStyle: 'readonly', performance: 'readonly',
        Event: 'readonly', KeyboardEvent: 'readonly', MouseEvent: 'readonly', HTMLElement: 'readonly',
        TextDecoder: 'readonly', TextEncoder: 'readonly', URL: 'readonly', structuredClone: 'readonly', globalThis: 'readonly',
      },
    },
    rules: {
      // Unused arguments are part of callback signatures; unused variables are errors.
      '@typescript-eslint/no-unused-vars': ['error', { args: 'none', caughtErrors: 'none', ignoreRestSiblings: true }],
    },
  },
  {
    // CommonJS test helpers (a fake engine host forked by the engine client tests).
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
