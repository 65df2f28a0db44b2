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

/** What a copy knows of a manifest it writes. */
export interface ManifestPutOptions {
  /**
   * Something it points to was just written into this sink (a blob uploaded
   * or mounted, a manifest under it written): the sink cannot hold it yet,
   * so a check whether it is there can be skipped. A hint only: writing a
   * manifest that is there after all is harmless.
   */
  fresh?: boolean
}

/** Stores manifest or index bytes (verified against `desc.digest`); called once all they point to is there. */
export interface ManifestPusher {
  putManifest(desc: Descriptor, bytes: Buffer, opts?: ManifestPutOptions): Promise<void>
}

/** Names a root: an index.json entry in a layout, a tag in a registry. */
export interface Tagger {
  /** `fresh`: the root was just written, so no name points at it yet. */
  tag(reference: string, desc: Descriptor, bytes: Buffer, opts?: ManifestPutOptions): Promise<void>
}

/** Lists the tags of a repository. */
export interface TagLister {
  listTags(repository: string): Promise<string[]>
}

/** Lists the manifests whose `subject` is `digest`, optionally of one artifact type. */
export interface ReferrerLister {
  referrers(repository: string, digest: string, artifactType?: string): Promise<Descriptor[]>
}

/** Where images are read from: a registry repository, an OCI layout, an oci-archive. */
export interface ImageSource extends ManifestFetcher, BlobFetcher {
  /** For messages, e.g. `127.0.0.1:5000/library/nginx`. */
  readonly name: string
}

/** Where images are written: an OCI layout, a registry repository. */
export interface ImageSink extends BlobChecker, BlobPusher, ManifestPusher, Tagger {}

/** A file as a file sink sees it: where it goes (relative, `/`-separated, already checked safe), what it must be. */
export interface FileRef {
  path: string
  size: number
  sha256: string
}

/** What a sink did with one file: took its bytes, or found it already there (same size and sha256). */
export type FilePutAction = 'written' | 'skipped'

export interface FilePutOptions {
  /** Whether the file is executable where the place keeps modes (a web root: 0755 rather than 0644). */
  executable: boolean
  /** Bytes taken in (or found already there), for progress. */
  onBytes: (n: number) => void
  /** What was done with the file; called once, possibly after put resolved (a flush or an upload that runs on). */
  onStored: (action: FilePutAction) => void
}

/**
 * Where files are written: a web server root, an S3 bucket (in the spirit of
 * containerd's content writer, committed or aborted). `put` takes a body
 * that hashes itself as it flows and throws before its end when the bytes are
 * not `file`'s; nothing from a body that did not end normally ever becomes
 * visible under its final name. Work a put leaves running (a flush, an upload)
 * is awaited by `commit` or `abort`, and a put may throw the failure of an
 * earlier one.
 */
export interface FileSink {
  /** For messages: `--root /srv/www`, `bucket offline at 10.0.0.5:7480`. */
  readonly name: string
  /** The name a path gets there, as results list it: the path under the root, the object key. */
  where(path: string): string
  /** Whether the place holds `file` (same size and sha256) already. Only reads. */
  has(file: FileRef): Promise<boolean>
  /** Take in one file; resolves once `body` is consumed, so the caller can read the next. */
  put(file: FileRef, body: AsyncIterable<Buffer>, opts: FilePutOptions): Promise<void>
  /**
   * Optional: take in a small file whose bytes are checked already, as put()
   * does; undefined when it was taken in at once, without an await (the
   * caller then goes on to the next entry of its batch).
   */
  putWhole?(file: FileRef, bytes: Buffer, opts: FilePutOptions): Promise<void> | undefined
  /** Wait for what the puts left running and make every file visible under its name; throws the first failure. */
  commit(): Promise<void>
  /** After a failure: wait for what is running and take back what is not visible yet. */
  abort(): Promise<void>
}

/** A file sink with the step that makes its place ready for puts (a root created, a bucket made), run after a delta's pre-check. */
export interface OpenableFileSink extends FileSink {
  open(): Promise<void>
}
