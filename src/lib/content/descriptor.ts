/**
 * The OCI data model airlock moves around: descriptors and the two kinds of
 * manifest document. Types only; parsing them is graph/'s job.
 */

export interface Platform {
  architecture: string
  os: string
  variant?: string
  'os.version'?: string
  'os.features'?: string[]
}

/** A content descriptor as OCI defines it; unknown fields are kept by callers that copy bytes verbatim. */
export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  platform?: Platform
  annotations?: Record<string, string>
  urls?: string[]
  artifactType?: string
}

/** The parts of an image manifest we read. */
export interface ImageManifest {
  schemaVersion: number
  mediaType?: string
  artifactType?: string
  config: Descriptor
  layers: Descriptor[]
  /** The manifest this one refers to (a signature, an SBOM): OCI 1.1 referrers. */
  subject?: Descriptor
  annotations?: Record<string, string>
}

/** The parts of an index / manifest list we read. */
export interface ImageIndex {
  schemaVersion: number
  mediaType?: string
  artifactType?: string
  manifests: Descriptor[]
  subject?: Descriptor
  annotations?: Record<string, string>
}
