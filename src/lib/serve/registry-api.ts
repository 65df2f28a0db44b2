import type {IncomingMessage, ServerResponse} from 'node:http'
import {Readable} from 'node:stream'

import type {ImageIndex} from '../content/descriptor.js'
import {isDigest} from '../content/digest.js'
import {MediaType} from '../content/media-types.js'
import {sendBody} from './range.js'
import type {RegistryContent} from './registry-content.js'

/**
 * The pull side of the OCI distribution API, read-only, over a
 * RegistryContent: `/v2/`, manifests and blobs (GET, HEAD), `tags/list`,
 * `_catalog` and the referrers API. Every answer carries the OCI error body
 * on failure; a method that would write gets 405.
 */

const API_VERSION = {'Docker-Distribution-API-Version': 'registry/2.0'}
const JSON_TYPE = 'application/json; charset=utf-8'
/** Page size of `tags/list` and `_catalog` when the client names none, and the most it may ask. */
const DEFAULT_PAGE = 1000
const MAX_PAGE = 10_000

type ErrorCode =
  | 'NAME_UNKNOWN'
  | 'NAME_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'BLOB_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'UNSUPPORTED'
  | 'PAGINATION_NUMBER_INVALID'

/** An error body of the distribution API: its code, message and optional detail. */
interface ApiError {
  code: ErrorCode
  message: string
  detail?: unknown
}

function sendError(req: IncomingMessage, res: ServerResponse, status: number, {code, message, detail}: ApiError): void {
  const body = Buffer.from(JSON.stringify({errors: [{code, message, ...(detail === undefined ? {} : {detail})}]}))
  res.statusCode = status
  res.setHeader('Content-Type', JSON_TYPE)
  res.setHeader('Content-Length', body.length)
  res.end(req.method === 'HEAD' ? undefined : body)
}

function sendJson(req: IncomingMessage, res: ServerResponse, doc: unknown, contentType = JSON_TYPE): void {
  const body = Buffer.from(JSON.stringify(doc))
  res.statusCode = 200
  res.setHeader('Content-Type', contentType)
  res.setHeader('Content-Length', body.length)
  res.end(req.method === 'HEAD' ? undefined : body)
}

/** `?n=&last=` paging of a sorted list, with the `Link` header to the next page; false when `n` is not a number. */
function page(path: string, params: URLSearchParams, res: ServerResponse, all: string[]): string[] | false {
  const nRaw = params.get('n')
  let n = DEFAULT_PAGE
  if (nRaw !== null) {
    if (!/^\d+$/.test(nRaw)) return false
    n = Math.min(Number(nRaw), MAX_PAGE)
  }
  const last = params.get('last')
  const from = last === null ? 0 : all.findIndex((x) => x > last)
  const rest = from === -1 ? [] : all.slice(from)
  const out = rest.slice(0, n)
  if (rest.length > n && out.length > 0) {
    const next = new URLSearchParams({n: String(n), last: out[out.length - 1]})
    res.setHeader('Link', `<${path}?${next}>; rel="next"`)
  }
  return out
}

/** `/v2/<name>/<kind>/<rest>`: the name may hold slashes; the kind is the last such word before a slash-free rest. */
const ROUTE = /^\/v2\/(.+)\/(manifests|blobs|referrers)\/([^/]+)$/
const TAGS = /^\/v2\/(.+)\/tags\/list$/

/**
 * Answer one request under `/v2`. `path` is the decoded, checked path
 * (no `.` or `..` segment). Only GET and HEAD reach here.
 */
export async function handleRegistry(
  content: RegistryContent,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  params: URLSearchParams,
): Promise<void> {
  for (const [k, v] of Object.entries(API_VERSION)) res.setHeader(k, v)
  if (path === '/v2' || path === '/v2/') return sendJson(req, res, {})
  if (path === '/v2/_catalog') {
    const names = page(path, params, res, content.repositoryNames())
    if (names === false)
      return sendError(req, res, 400, {code: 'PAGINATION_NUMBER_INVALID', message: 'n must be a whole number'})
    return sendJson(req, res, {repositories: names})
  }
  const ns = params.get('ns') ?? undefined
  const tags = TAGS.exec(path)
  if (tags) {
    const repo = content.repository(tags[1], ns)
    if (!repo)
      return sendError(req, res, 404, {
        code: 'NAME_UNKNOWN',
        message: 'repository name not known to registry',
        detail: {name: tags[1]},
      })
    const list = page(path, params, res, [...repo.tags.keys()].sort())
    if (list === false)
      return sendError(req, res, 400, {code: 'PAGINATION_NUMBER_INVALID', message: 'n must be a whole number'})
    return sendJson(req, res, {name: tags[1], tags: list})
  }
  const m = ROUTE.exec(path)
  if (!m)
    return sendError(req, res, 404, {code: 'NAME_UNKNOWN', message: 'no such path in the registry API', detail: {path}})
  const [, name, kind, reference] = m
  const repo = content.repository(name, ns)
  if (!repo)
    return sendError(req, res, 404, {
      code: 'NAME_UNKNOWN',
      message: 'repository name not known to registry',
      detail: {name},
    })

  if (kind === 'manifests') {
    const digest = isDigest(reference) ? reference : repo.tags.get(reference)
    if (!digest) {
      return reference.startsWith('sha256:') || reference.includes(':')
        ? sendError(req, res, 400, {code: 'DIGEST_INVALID', message: 'not a sha256 digest', detail: {reference}})
        : sendError(req, res, 404, {
            code: 'MANIFEST_UNKNOWN',
            message: 'manifest unknown',
            detail: {name, tag: reference},
          })
    }
    const manifest = await content.manifest(digest)
    if (!manifest)
      return sendError(req, res, 404, {code: 'MANIFEST_UNKNOWN', message: 'manifest unknown', detail: {name, digest}})
    const bytes = manifest.bytes
    return sendBody(req, res, {
      size: bytes.length,
      headers: {'Content-Type': manifest.mediaType, 'Docker-Content-Digest': digest, ETag: `"${digest}"`},
      open: (start, end) => readableOf(bytes.subarray(start, end + 1)),
    })
  }

  if (!isDigest(reference))
    return sendError(req, res, 400, {
      code: 'DIGEST_INVALID',
      message: 'not a sha256 digest',
      detail: {digest: reference},
    })

  if (kind === 'blobs') {
    const size = content.blobSize(reference)
    if (size === undefined)
      return sendError(req, res, 404, {
        code: 'BLOB_UNKNOWN',
        message: 'blob unknown to registry',
        detail: {digest: reference},
      })
    return sendBody(req, res, {
      size,
      headers: {
        'Content-Type': 'application/octet-stream',
        'Docker-Content-Digest': reference,
        ETag: `"${reference}"`,
        'Cache-Control': 'max-age=31536000',
      },
      open: (start, end) => content.openBlob(reference, start, end),
    })
  }

  // The referrers API: never 404 for a subject it has no referrers of, an empty index instead.
  let manifests = await content.referrersOf(reference)
  const artifactType = params.get('artifactType')
  if (artifactType !== null) {
    manifests = manifests.filter((d) => d.artifactType === artifactType)
    res.setHeader('OCI-Filters-Applied', 'artifactType')
  }
  const index: ImageIndex = {schemaVersion: 2, mediaType: MediaType.ociIndex, manifests}
  return sendJson(req, res, index, MediaType.ociIndex)
}

/** 405 for anything that writes, with the OCI error body. */
export function refuseRegistryWrite(req: IncomingMessage, res: ServerResponse): void {
  for (const [k, v] of Object.entries(API_VERSION)) res.setHeader(k, v)
  res.setHeader('Allow', 'GET, HEAD')
  sendError(req, res, 405, {code: 'UNSUPPORTED', message: 'this registry is read-only: it serves a bundle in place'})
}

/** 404 under /v2 for a path that cannot name anything (a `..` segment, bad encoding). */
export function registryNotFound(req: IncomingMessage, res: ServerResponse): void {
  for (const [k, v] of Object.entries(API_VERSION)) res.setHeader(k, v)
  sendError(req, res, 404, {code: 'NAME_UNKNOWN', message: 'no such path in the registry API'})
}

function readableOf(buf: Buffer) {
  // A manifest is one small buffer: a stream of one chunk.
  return Readable.from([buf], {objectMode: false})
}
