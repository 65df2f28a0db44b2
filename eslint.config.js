// Style by machine: typescript-eslint's recommended rules, plus the few that
// keep functions readable (at most five parameters, no unused names).
import js from '@eslint/js'
import globals from 'globals'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  {ignores: ['dist/**', 'node_modules/**', '.demo/**', 'oclif.manifest.json']},
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {globals: {...globals.node}},
    rules: {
      'max-params': ['error', 5],
      '@typescript-eslint/no-unused-vars': ['error', {argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none'}],
      // Terminal escapes and NUL bytes are matched on purpose (remote text cleaned, tar names checked).
      'no-control-regex': 'off',
      // sha256sum's two spaces are a format, clearer written as they are.
      'no-regex-spaces': 'off',
    },
  },
)
