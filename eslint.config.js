// ESLint flat config: typescript-eslint's type-checked rules over src/, test/ and bench/.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // test/fixtures/layers is input for the layer rules' test (data, deliberately badly layered).
  { ignores: ['dist/**', 'node_modules/**', 'eslint.config.js', 'test/fixtures/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/no-floating-promises': 'error',
    },
  },
  // The tiny .mjs worker bootstrap is plain JavaScript outside the TypeScript project.
  {
    files: ['**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { parserOptions: { projectService: false, project: null } },
  },
  // The web UI is plain browser JavaScript served as is (no build step for users).
  {
    files: ['src/ui/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      parserOptions: { projectService: false, project: null },
      sourceType: 'module',
      globals: Object.fromEntries(
        [
          'window',
          'document',
          'location',
          'history',
          'navigator',
          'fetch',
          'console',
          'setTimeout',
          'clearTimeout',
          'URLSearchParams',
          'Node',
          'Event',
          'HTMLElement',
          'HTMLSelectElement',
          'HTMLButtonElement',
        ].map((g) => [g, 'readonly']),
      ),
    },
  },
);
