import type {IncomingHttpHeaders} from 'node:http'

import {RegistryError} from '../errors.js'

/**
 * Registry answers as errors users can act on: the registry, what was
 * asked, the status and the OCI error codes and messages of the body
 * (capped), never a credential.
 */

/** Error bodies are read up to this many bytes, the rest is dropped. */
export const MAX_ERROR_BODY = 64 * 1024

/** `{errors: [{code, message}]}` from an error body, when it is one. */
export function parseErrorBody(body: Buffer): {codes: string[]; messages: string[]} {
  try {
    const j = JSON.parse(body.subarray(0, MAX_ERROR_BODY).toString('utf8')) as {
      errors?: {code?: string; message?: string}[]
    }
    const errors = Array.isArray(j.errors) ? j.errors : []
    return {
      codes: errors.map((e) => String(e.code ?? '')).filter(Boolean),
      messages: errors.map((e) => String(e.message ?? '').slice(0, 200)).filter(Boolean),
    }
  } catch {
    return {codes: [], messages: []}
  }
}

export interface ErrorContext {
  /** The registry as references name it. */
  registry: string
  /** host[:port] the requests went to. */
  host: string
  /** Names the request: `manifest docker.io/library/nginx:1.25`. */
  what: string
  repository?: string
  /** Suggested to the user after a 401 or 403. */
  authHint?: (status: number) => string
}

/** An answer the caller did not accept, as a RegistryError (a Retry-After kept for the retry policy). */
export function responseError(
  res: {status: number; headers: IncomingHttpHeaders; body: Buffer},
  ctx: ErrorContext,
): RegistryError {
  const {codes, messages} = parseErrorBody(res.body)
  const detail = messages.length > 0 ? `: ${messages.join('; ')}` : ''
  const codeText = codes.length > 0 ? ` ${codes.join(', ')}` : ''
  const subject = ctx.what.includes(ctx.registry) ? ctx.what : `${ctx.registry}: ${ctx.what}`
  const err = new RegistryError(`${subject}: HTTP ${res.status}${codeText}${detail}`, {
    host: ctx.host,
    status: res.status,
    repository: ctx.repository,
    codes,
  })
  if ((res.status === 401 || res.status === 403) && ctx.authHint) withHint(err, ctx.authHint(res.status))
  const ra = res.headers['retry-after']
  if (typeof ra === 'string') (err as RegistryError & {retryAfter?: string}).retryAfter = ra
  return err
}

export function withHint<E extends RegistryError>(err: E, hint: string): E {
  ;(err.suggestions as string[]).push(hint)
  return err
}
