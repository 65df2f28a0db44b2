import type {Descriptor, Platform} from '../content/descriptor.js'

/** `linux/arm64/v8` as {os, architecture, variant}. */
export interface PlatformSpec {
  os: string
  architecture: string
  variant?: string
}

/** `os/arch` or `os/arch/variant`, lowercase: what a manifest and --platform accept. */
export const PLATFORM_RE = /^[a-z0-9_]+\/[a-z0-9_]+(?:\/[a-z0-9_.]+)?$/

export const PLATFORM_HINT = 'expected os/arch or os/arch/variant in lowercase, e.g. linux/amd64 or linux/arm64/v8'

export function parsePlatform(s: string): PlatformSpec {
  const parts = s.trim().toLowerCase().split('/')
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    throw new Error(`bad platform "${s}": expected os/arch or os/arch/variant`)
  }
  return {os: parts[0], architecture: parts[1], variant: parts[2]}
}

export function formatPlatform(p: Pick<Platform, 'os' | 'architecture' | 'variant'>): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/')
}

/** Variants that mean the same thing as none (containerd's normalization). */
function normalVariant(p: PlatformSpec): string | undefined {
  const v = p.variant?.toLowerCase()
  if (p.architecture === 'arm64' && (v === 'v8' || v === undefined)) return undefined
  if (p.architecture === 'amd64' && (v === 'v1' || v === undefined)) return undefined
  return v
}

/**
 * Whether an image for `have` satisfies a request for `want`. A request
 * without a variant takes any variant of that os/arch; with one, it must match.
 */
export function platformMatches(want: PlatformSpec, have: Pick<Platform, 'os' | 'architecture' | 'variant'>): boolean {
  if (want.os !== have.os?.toLowerCase() || want.architecture !== have.architecture?.toLowerCase()) return false
  if (want.variant === undefined) return true
  return normalVariant(want) === normalVariant({...have, os: have.os, architecture: have.architecture.toLowerCase()})
}

/**
 * Attestations and signatures in an index (BuildKit writes them as
 * `unknown/unknown`) are not platforms a user asks for.
 */
export function isRunnableDescriptor(d: Descriptor): boolean {
  if (!d.platform) return false
  if (d.annotations?.['vnd.docker.reference.type']) return false
  return d.platform.os !== 'unknown' && d.platform.architecture !== 'unknown'
}

/** The platforms of an index's runnable entries, in order, without duplicates. */
export function indexPlatforms(manifests: Descriptor[]): string[] {
  const seen = new Set<string>()
  for (const d of manifests) if (isRunnableDescriptor(d)) seen.add(formatPlatform(d.platform!))
  return [...seen]
}
