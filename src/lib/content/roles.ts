import type {Descriptor} from './descriptor.js'
import type {Opener} from './opener.js'

/**
 * What a place that holds images can do, one capability per interface (in
 * the spirit of oras-go's content.Fetcher/Pusher and registry.TagLister).
 * A registry, an OCI layout, an oci-archive and a bundle each implement the
 * roles they can; the copier and the other walks ask only for the roles they
 * need. Everything is addressed by descriptor and verified by the caller.
 */

/** Reads manifests and indexes: small JSON documents, whole in memory. */
export interface ManifestFetcher {
  /** The bytes of a manifest or index; they must hash to `desc.digest` (callers check again). */
  fetchManifest(desc: Descriptor): Promise<Buffer>
}

/** Reads blobs as streams, resumable from an offset where the place can. */
export interface BlobFetcher {
  blobOpener(desc: Descriptor): Opener
}

/** Turns a name (a tag, a layout's ref annotation) into the descriptor of its root. */
export interface Resolver {
  resolve(reference: string): Promise<Descriptor | undefined>
}

/** Says whether a blob is there with this size. */
export interface BlobChecker {
  hasBlob(desc: Descriptor): Promise<boolean>
}

export interface BlobPutResult {
  /** Bytes read from the source for this blob. */
  bytesFetched: number
  /** Bytes an earlier, interrupted attempt had kept and that were not read again. */
  bytesResumed: number
}

export interface BlobPutOptions {
  /** Names the blob in errors: `blob sha256:... of docker.io/library/nginx:1.25.3`. */
  label: string
  onBytes?: (n: number) => void
}

/** Writes a blob from an Opener; size and digest are verified before it becomes visible. */
export interface BlobPusher {
  putBlob(desc: Descriptor, open: Opener, opts: BlobPutOptions): Promise<BlobPutResult>
}

/** Stores manifest or index bytes (verified against `desc.digest`); called once all they point to is there. */
export interface ManifestPusher {
  putManifest(desc: Descriptor, bytes: Buffer): Promise<void>
}

/** Names a root: an index.json entry in a layout, a tag in a registry. */
export interface Tagger {
  tag(reference: string, desc: Descriptor, bytes: Buffer): Promise<void>
}

/** Lists the tags of a repository. */
export interface TagLister {
  listTags(repository: string): Promise<string[]>
}

/** Lists the manifests whose `subject` is `digest`, optionally of one artifact type. */
export interface ReferrerLister {
  referrers(repository: string, digest: string, artifactType?: string): Promise<Descriptor[]>
}

/** Makes a blob that `from` holds appear in this place without copying its bytes; false when declined. */
export interface Mounter {
  mountBlob(desc: Descriptor, from: string): Promise<boolean>
}

/** Where images are read from: a registry repository, an OCI layout, an oci-archive. */
export interface ImageSource extends ManifestFetcher, BlobFetcher {
  /** For messages, e.g. `127.0.0.1:5000/library/nginx`. */
  readonly name: string
}

/** Where images are written: an OCI layout, a registry repository. */
export interface ImageSink extends BlobChecker, BlobPusher, ManifestPusher, Tagger {}
