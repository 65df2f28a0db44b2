import type {Descriptor} from '../content/descriptor.js'
import type {Opener} from '../content/opener.js'
import type {ImageSource} from '../content/roles.js'
import type {RegistryClient} from './client.js'

/** A repository of a registry as a copy source. */
export class RegistrySource implements ImageSource {
  readonly name: string

  constructor(
    readonly client: RegistryClient,
    readonly repository: string,
    /** Where verified manifests may already be (the layout a pull writes to), to skip their GETs. */
    private readonly cache?: {readBlob(desc: Pick<Descriptor, 'digest' | 'size'>): Promise<Buffer | undefined>},
  ) {
    this.name = `${client.registry}/${repository}`
  }

  async fetchManifest(desc: Descriptor): Promise<Buffer> {
    const cached = await this.cache?.readBlob(desc)
    if (cached) return cached
    return (await this.client.getManifest(this.repository, desc.digest)).bytes
  }

  blobOpener(desc: Descriptor): Opener {
    return this.client.blobOpener(this.repository, desc.digest)
  }
}
