import {readFile} from 'node:fs/promises'
import {rootCertificates} from 'node:tls'

import {UsageError} from '../errors.js'

/**
 * TLS settings shared by every client that speaks HTTPS: the registry
 * client, HTTP downloads and the S3 importer. One reading of CA files, one
 * test for "this failure is about a certificate".
 */

/** How a client trusts the server it reaches: every client's options (registry, HTTP, S3) extend or pick it. */
export interface ConnectionOptions {
  /** Extra CAs (PEM files) trusted on top of the system ones. */
  caFiles?: string[]
  /** Allow unverified TLS (and, for a registry, plain HTTP). */
  insecure?: boolean
}

/** The system CAs plus the PEM files given, or undefined when none are given (the default trust store). */
export async function trustedCas(files: string[] = []): Promise<string[] | undefined> {
  if (files.length === 0) return undefined
  const extra = await Promise.all(
    files.map((f) =>
      readFile(f, 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw new UsageError(`cannot read CA file ${f}: ${err.code ?? err.message}`)
      }),
    ),
  )
  return [...rootCertificates, ...extra]
}

/** A certificate problem (an answer, not a reason to retry or fall back to plain HTTP), by its error code or its cause's. */
export function isCertificateError(err: unknown): boolean {
  const e = err as {code?: string; cause?: {code?: string}} | undefined
  const code = e?.code ?? e?.cause?.code ?? ''
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME|UNABLE_TO_GET_ISSUER/.test(code)
}

/**
 * When `err` is a certificate problem, add to its suggestions what a user
 * can do: trust the CA that signed `host`'s certificate `how` (the flag or
 * field that names a CA for this kind of target).
 */
export function suggestTrust(err: unknown, host: string, how: string): void {
  if (!isCertificateError(err)) return
  const suggestions = (err as {suggestions?: string[]}).suggestions
  if (Array.isArray(suggestions)) suggestions.push(`trust the CA that signed ${host}'s certificate ${how}`)
}
