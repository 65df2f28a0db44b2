/**
 * The kinds of error airlock raises. Each carries its exit code: 2 for a
 * user's mistake in flags, a manifest or a bundle; 1 for a failure while
 * doing the work. Library code throws these; only the base command prints.
 */
export type ErrorKind = 'usage' | 'manifest' | 'bundle' | 'integrity' | 'registry' | 'network' | 'failure'

/**
 * Credentials this run sent (a password, a Basic header's base64, a
 * token): a server may echo them in an error (a registry repeating the
 * Authorization header it got), and none is ever printed.
 */
const sentSecrets = new Set<string>()

/** Note a credential about to be sent, so that no error prints it. */
export function noteSecret(value: string | undefined): void {
  // Shorter values would redact ordinary words; no real credential is that short.
  if (value && value.length >= 6) sentSecrets.add(value)
}

/**
 * Text that came from elsewhere (a registry's, S3's or a web server's error
 * body, a file name), safe for a terminal: escape sequences (CSI, OSC such
 * as a title or clipboard write, and the rest) and every other control
 * character (C0 but newline and tab, DEL, C1) dropped, and any credential
 * this run sent replaced by `[redacted]`. Every AirlockError's text goes
 * through it, so whatever airlock prints of an error is clean.
 */
export function terminalSafe(text: string): string {
  let out = text
    // OSC, DCS, SOS, PM, APC: up to BEL or ST (ESC backslash, or 0x9c).
    .replace(/(?:\x1b[\]PX^_]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?/g, '')
    // CSI sequences (ESC [ or 0x9b), then any other ESC + one character.
    .replace(/(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?/g, '')
    .replace(/\x1b[\s\S]?/g, '')
    .replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, '')
  for (const s of sentSecrets) if (out.includes(s)) out = out.split(s).join('[redacted]')
  return out
}

export class AirlockError extends Error {
  readonly kind: ErrorKind
  readonly exitCode: 1 | 2
  /** Extra lines printed under the message (e.g. one line per manifest error). */
  readonly details: string[]
  readonly suggestions: string[]

  constructor(
    kind: ErrorKind,
    message: string,
    opts: {details?: string[]; suggestions?: string[]; cause?: unknown} = {},
  ) {
    super(terminalSafe(message), opts.cause === undefined ? undefined : {cause: opts.cause})
    this.name = 'AirlockError'
    this.kind = kind
    this.exitCode = kind === 'usage' || kind === 'manifest' || kind === 'bundle' ? 2 : 1
    this.details = (opts.details ?? []).map(terminalSafe)
    this.suggestions = (opts.suggestions ?? []).map(terminalSafe)
  }
}

/** Bad flags or arguments. Exit 2. */
export class UsageError extends AirlockError {
  constructor(message: string, opts: {details?: string[]; suggestions?: string[]} = {}) {
    super('usage', message, opts)
    this.name = 'UsageError'
  }
}

/** One problem in a manifest, located by file, line, column and field path. */
export interface ManifestProblem {
  file: string
  line: number
  column: number
  /** e.g. `spec.binaries[3].sha256`; empty for the whole document. */
  path: string
  message: string
}

export function formatProblem(p: ManifestProblem): string {
  const where = `${p.file}:${p.line}:${p.column}`
  return p.path ? `${where}: ${p.path}: ${p.message}` : `${where}: ${p.message}`
}

/** An invalid manifest: every problem found, not only the first. Exit 2. */
export class ManifestError extends AirlockError {
  readonly problems: ManifestProblem[]

  constructor(file: string, problems: ManifestProblem[]) {
    const n = problems.length
    super('manifest', `${file}: ${n} problem${n === 1 ? '' : 's'} found`, {details: problems.map(formatProblem)})
    this.name = 'ManifestError'
    this.problems = problems
  }
}

/** An invalid or unreadable bundle given as input. Exit 2. */
export class BundleError extends AirlockError {
  constructor(message: string, opts: {details?: string[]; cause?: unknown} = {}) {
    super('bundle', message, opts)
    this.name = 'BundleError'
  }
}

/** Bytes that did not hash or size to what was expected. Exit 1. */
export class IntegrityError extends AirlockError {
  readonly expected: string
  readonly actual: string
  /** What was being checked, e.g. `blob sha256:ab.. of docker.io/library/nginx:1.25.3`. */
  readonly what: string

  constructor(what: string, expected: string, actual: string, opts: {details?: string[]} = {}) {
    super('integrity', `${what}: digest mismatch: expected ${expected}, got ${actual}`, opts)
    this.name = 'IntegrityError'
    this.what = what
    this.expected = expected
    this.actual = actual
  }
}

/**
 * Content whose OpenPGP signature does not verify with the key it must be
 * signed with (an apt InRelease, an rpm package). An IntegrityError, so the
 * download routine drops the partial file; its message speaks of the
 * signature, not of a digest. Exit 1.
 */
export class SignatureError extends IntegrityError {
  constructor(what: string, why: string, opts: {details?: string[]} = {}) {
    super(what, 'a valid signature', why, opts)
    this.name = 'SignatureError'
    this.message = `${what}: signature check failed: ${why}`
  }
}

/** A registry answered with an error. Keeps status, host and repository, never credentials. Exit 1. */
export class RegistryError extends AirlockError {
  readonly status?: number
  readonly host: string
  readonly repository?: string
  /** OCI error codes from the response body, e.g. MANIFEST_UNKNOWN. */
  readonly codes: string[]

  constructor(
    message: string,
    opts: {
      host: string
      status?: number
      repository?: string
      codes?: string[]
      details?: string[]
      suggestions?: string[]
      cause?: unknown
    },
  ) {
    super('registry', message, opts)
    this.name = 'RegistryError'
    this.host = opts.host
    this.status = opts.status
    this.repository = opts.repository
    this.codes = opts.codes ?? []
  }
}

/** A connection failed or an HTTP server answered with an error status. Exit 1. */
export class NetworkError extends AirlockError {
  readonly host: string
  readonly status?: number

  constructor(message: string, opts: {host: string; status?: number; cause?: unknown}) {
    super('network', message, opts)
    this.name = 'NetworkError'
    this.host = opts.host
    this.status = opts.status
  }
}

/** Any other failure while doing the work (disk full, a lock held, ...). Exit 1. */
export class FailureError extends AirlockError {
  constructor(message: string, opts: {details?: string[]; suggestions?: string[]; cause?: unknown} = {}) {
    super('failure', message, opts)
    this.name = 'FailureError'
  }
}

export function isAirlockError(err: unknown): err is AirlockError {
  return err instanceof AirlockError
}

/**
 * Several failures of one run as one error: every one is listed (message,
 * then its own details indented), none is dropped. Its kind is theirs when
 * they share one, else `failure`; groups given to it are flattened.
 */
export class FailureGroup extends AirlockError {
  readonly failures: Error[]

  constructor(failures: Error[], what = 'entries') {
    const kinds = new Set(failures.map((f) => (isAirlockError(f) ? f.kind : 'failure')))
    const kind: ErrorKind = kinds.size === 1 ? [...kinds][0] : 'failure'
    const details = failures.flatMap((f) => [f.message, ...(isAirlockError(f) ? f.details.map((d) => `  ${d}`) : [])])
    const suggestions = [...new Set(failures.flatMap((f) => (isAirlockError(f) ? f.suggestions : [])))]
    super(kind, `${failures.length} ${what} failed`, {details, suggestions, cause: failures[0]})
    this.name = 'FailureGroup'
    this.failures = failures
  }
}

/** One error for what a run's settled tasks threw: the only one itself, several as a FailureGroup. */
export function combineFailures(reasons: unknown[], what?: string): Error {
  const flat = reasons.flatMap((r) =>
    r instanceof FailureGroup ? r.failures : [r instanceof Error ? r : new Error(String(r))],
  )
  return flat.length === 1 ? flat[0] : new FailureGroup(flat, what)
}
