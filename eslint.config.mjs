// Lint: typescript-eslint's recommended type-aware rules; the ones that matter most here are
// no-floating-promises (a dropped promise hides a failed step) and no-misused-promises.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/generated/**', 'scratch/**', 'node_modules/**', 'bench/**', 'eslint.config.mjs', '.mocharc.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  // The status page's script runs in browsers.
  { files: ['packages/coordinator/static/**/*.js'], languageOptions: { globals: globals.browser, sourceType: 'script' } },
  {
    files: ['packages/*/src/**/*.ts', 'test/**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
);
