import {type AirlockError, ManifestError} from '../errors.js'

/** The error as a person reads it on stderr: the message, its details indented, then hints. */
export function errorText(err: AirlockError): string {
  const lines = [`Error: ${err.message}`, ...err.details.map((d) => `  ${d}`)]
  for (const s of err.suggestions) lines.push(`Hint: ${s}`)
  return `${lines.join('\n')}\n`
}

/** The contract's `--json` error document: `{"error": {kind, message, exitCode, details?}}`. */
export function errorDocument(err: AirlockError): {error: Record<string, unknown>} {
  // A manifest's problems go out structured too, so scripts need not parse the details lines.
  const problems = err instanceof ManifestError ? {problems: err.problems} : {}
  return {
    error: {
      kind: err.kind,
      message: err.message,
      exitCode: err.exitCode,
      ...(err.details.length > 0 ? {details: err.details} : {}),
      ...problems,
    },
  }
}
