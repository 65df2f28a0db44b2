// Style by machine: typescript-eslint's recommended rules, plus the few that
// keep functions readable (at most five parameters, no unused names) and one
// import order. Line width and layout are prettier's (.prettierrc.json).
import js from '@eslint/js'
import simpleImportSort from 'eslint-plugin-simple-import-sort'
import globals from 'globals'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  {ignores: ['dist/**', 'node_modules/**', '.demo/**', 'oclif.manifest.json']},
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {globals: {...globals.node}},
    plugins: {'simple-import-sort': simpleImportSort},
    rules: {
      'simple-import-sort/imports': 'error',
      'simple-import-sort/exports': 'error',
      'max-params': ['error', 5],
      '@typescript-eslint/no-unused-vars': [
        'error',
        {argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none'},
      ],
      // Terminal escapes and NUL bytes are matched on purpose (remote text cleaned, tar names checked).
      'no-control-regex': 'off',
      // sha256sum's two spaces are a format, clearer written as they are.
      'no-regex-spaces': 'off',
    },
  },
)
