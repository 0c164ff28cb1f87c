// The Datastore port over the Kubernetes API (ADR 0006), with plain HTTPS
// calls (the CNI executable's start-up budget). Kubernetes has no
// multi-object transaction, so each guarantee is built from one object's:
//   - a block write is a compare-and-swap on its resourceVersion; the address
//     it hands out is checked against the claims afterwards, and taken back if
//     a claim exists; a new block is first listed in its region's object, on
//     that object's resourceVersion, so no two blocks overlap (ipam/region.ts);
//   - a claim is created if absent (AlreadyExists: another holder), then the
//     address is checked against the blocks, and the claim deleted again if a
//     pod holds it (claim-protocol.ts, shared with the agent). Both sides
//     write, then read: whichever is second sees the first, so a floating IP
//     is never both a claim and a pod's address;
//   - the endpoint is a WorkloadEndpoint object, created at ADD once the
//     claims are made and deleted first at DEL (ADR 0008): what the agents
//     trust for a pod's addresses and sandbox. Calico's pod annotations are
//     written alongside for compatibility and decide nothing, through the
//     pod's status subresource as Calico's plugin writes them (the plugin's
//     token may not patch pods themselves).
// DEL's release is release-container.ts; the reads by path and label are
// kube-reads.ts.
import type {
  AllocationQuery,
  AllocationSnapshot,
  AttachedContainer,
  Attachment,
  BlockWrite,
  BlockWritten,
  Datastore,
  EndpointRef,
  PodInfo,
  ReleaseTarget,
  Released,
} from "../datastore/datastore.js";
import { DatastoreUnavailableError } from "../datastore/unavailable-error.js";
import type {
  FloatingIpClaim,
  IpamBlock,
  IpamRegion,
  Versioned,
  WorkloadEndpoint,
} from "../model/records.js";
import { planBindings } from "../floating/validate.js";
import {
  canonicalFloatingIps,
  FloatingIpError,
  FLOATING_IPS_ANNOTATION,
  parseFloatingIps,
} from "../floating/annotation.js";
import { blockCidrsToRead } from "../floating/claim-check.js";
import { withoutHandle } from "../ipam/block.js";
import { emptyRegion, overlappingCidr, regionCidrOf, withBlockCidr } from "../ipam/region.js";
import { KubeApiError, KubeUnavailableError, type KubeHttp } from "./http.js";
import { endpointObjectName, prefixObjectName } from "./names.js";
import { apiPaths as paths } from "./api-paths.js";
import { claimAll, type ClaimPort } from "./claim-protocol.js";
import { httpClaimPort } from "./http-claim-port.js";
import {
  exists,
  getOrUndefined,
  isReason,
  listClaims,
  listEndpointObjects,
  listNodeBlocks,
  listPools,
} from "./kube-reads.js";
import type { KubeReadCache } from "./node-cache.js";
import { releaseContainer } from "./release-container.js";
import {
  affinityObject,
  blockFromObject,
  blockToObject,
  claimFromObject,
  endpointFromObject,
  endpointNodeSelector,
  endpointToObject,
  podAnnotationsFor,
  regionFromObject,
  regionToObject,
  type KubeList,
  type KubeObject,
  type PodObject,
} from "./objects.js";

const MAX_ATTEMPTS = 20;

export class KubernetesDatastore implements Datastore {
  readonly #http: KubeHttp;
  readonly #claims: ClaimPort;
  readonly #reporter: string;
  readonly #cache: KubeReadCache | undefined;

  /**
   * `reporter` names this node in Events' source. `cache`: the resident
   * server's pools, node blocks and Node (node-cache.ts); the executable has none.
   */
  constructor(http: KubeHttp, reporter: string, cache?: KubeReadCache) {
    this.#http = unavailableAsDatastoreError(http);
    this.#claims = httpClaimPort(this.#http);
    this.#reporter = reporter;
    this.#cache = cache;
  }

  async readAllocationSnapshot({
    node,
    floatingIps,
    pools: known,
  }: AllocationQuery): Promise<AllocationSnapshot> {
    // Bounded by what this pod touches (issue 14): the pools, this node's
    // blocks by their label from the API server's watch cache (a stale one
    // only costs a retry: every block write is on its resourceVersion), and
    // each floating IP's claim, region and holding blocks by name.
    // With the pools at hand (read by this ADD already), the block at each
    // pool's blockSize is read alongside the region, not after it.
    const guessed = known
      ? [...new Set(floatingIps.flatMap((ip) => blockCidrsToRead(ip, undefined, known)))]
      : [];
    const [pools, nodeBlocks, claims, regions, guessedBlocks] = await Promise.all([
      known ?? listPools(this.#http),
      node === undefined ? [] : listNodeBlocks(this.#http, node, "0", this.#cache),
      Promise.all(floatingIps.map((ip) => this.#getClaim(ip))),
      this.readRegions(floatingIps.map((ip) => regionCidrOf(ip) ?? "")),
      this.readBlocks(guessed),
    ]);
    const read = new Set([...nodeBlocks.map((block) => block.value.cidr), ...guessed]);
    const holding = floatingIps
      .flatMap((ip, i) => blockCidrsToRead(ip, regions[i]?.value, pools))
      .filter((cidr) => !read.has(cidr));
    const inNode = new Set(nodeBlocks.map((block) => block.value.cidr));
    return {
      pools: [...pools],
      blocks: [
        ...nodeBlocks,
        ...guessedBlocks.filter((block) => !inNode.has(block.value.cidr)),
        ...(await this.readBlocks([...new Set(holding)])),
      ],
      claims: claims.flatMap((claim) => claim ?? []),
    };
  }

  /** Every block (`buoy get`, tests): not on ADD's or DEL's path. */
  async listBlocks(): Promise<Versioned<IpamBlock>[]> {
    const list = await this.#http.get<KubeList<KubeObject<Partial<IpamBlock>>>>(paths.blocks);
    return list.items.map(blockFromObject);
  }

  /**
   * From the API server's watch cache: a list a moment behind only costs a
   * conflict on write; what must be fresh (a DEL's own addresses) the
   * callers read by name (ipam.ts releaseHandle).
   */
  listNodeBlocks(node: string): Promise<Versioned<IpamBlock>[]> {
    return listNodeBlocks(this.#http, node, "0", this.#cache);
  }

  /** The block as the API server has it now, into the cache as well (after a conflict). */
  async #readBlockAfterConflict(cidr: string, supersedes: string | undefined): Promise<void> {
    if (!this.#cache) return;
    const name = prefixObjectName(cidr) ?? cidr;
    const object = await getOrUndefined<KubeObject>(this.#http, paths.block(cidr));
    this.#cache.blockSeen(name, object, supersedes);
  }

  async readRegions(cidrs: readonly string[]): Promise<(Versioned<IpamRegion> | undefined)[]> {
    return Promise.all(
      cidrs.map(async (cidr) => {
        const object =
          cidr === ""
            ? undefined
            : await getOrUndefined<KubeObject<Partial<IpamRegion>>>(this.#http, paths.region(cidr));
        return object && regionFromObject(object);
      }),
    );
  }

  async readBlocks(cidrs: readonly string[]): Promise<Versioned<IpamBlock>[]> {
    return (await Promise.all(cidrs.map((cidr) => this.#getBlock(cidr)))).flatMap(
      (block) => block ?? [],
    );
  }

  async readClaimedAddresses(ips: readonly string[]): Promise<string[]> {
    const held = await Promise.all(ips.map((ip) => exists(this.#http, paths.claim(ip))));
    return ips.filter((_, i) => held[i]);
  }

  async writeBlock({ block, revision, assigned, absent = [] }: BlockWrite): Promise<BlockWritten> {
    if (revision === undefined) {
      if ((await this.readBlocks(absent)).length > 0) return "overlaps";
      const listed = await this.#listInRegion(block.cidr);
      if (listed !== "listed") return listed;
    }
    let written: KubeObject;
    try {
      written =
        revision === undefined
          ? await this.#http.create<KubeObject>(paths.blocks, blockToObject(block))
          : await this.#http.replace<KubeObject>(
              paths.block(block.cidr),
              blockToObject(block, revision),
            );
    } catch (error) {
      if (isReason(error, "AlreadyExists", "Conflict", "NotFound")) {
        // A cache a moment behind: what IPAM retries with is read by name.
        await this.#readBlockAfterConflict(block.cidr, revision);
        return "conflict";
      }
      throw error;
    }
    this.#cache?.blockSeen(written.metadata.name, written, revision);
    if (revision === undefined) {
      await this.#http.create(paths.affinities, affinityObject(block)).catch((error: unknown) => {
        if (!isReason(error, "AlreadyExists")) throw error;
      });
    }
    if (!assigned || !(await exists(this.#http, paths.claim(assigned.ip)))) return "written";
    // A claim for the address was created meanwhile: take the address back.
    await this.#takeBack(blockFromObject(written as KubeObject<Partial<IpamBlock>>), assigned.ip);
    return "claimed";
  }

  /**
   * Lists a new block's CIDR in its region (ipam/region.ts) before the block
   * is created: the region object, updated on its resourceVersion, is what
   * makes two overlapping blocks impossible. "overlaps" when the region lists
   * one that overlaps it. A CIDR listed already (by a creator that stopped
   * before creating the block, or a deleted block's) may be created again.
   */
  async #listInRegion(cidr: string): Promise<"listed" | "overlaps" | "conflict"> {
    const regionCidr = regionCidrOf(cidr);
    if (regionCidr === undefined) throw new Error(`'${cidr}' is not a block CIDR`);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const object = await getOrUndefined<KubeObject<Partial<IpamRegion>>>(
        this.#http,
        paths.region(regionCidr),
      );
      const read = object ? regionFromObject(object) : undefined;
      const region = read?.value ?? emptyRegion(regionCidr);
      if (region.blocks.includes(cidr)) return "listed";
      if (overlappingCidr(region.blocks, cidr) !== undefined) return "overlaps";
      const after = regionToObject(withBlockCidr(region, cidr), read?.revision);
      try {
        if (read) await this.#http.replace(paths.region(regionCidr), after);
        else await this.#http.create(paths.regions, after);
        return "listed";
      } catch (error) {
        if (!isReason(error, "AlreadyExists", "Conflict", "NotFound")) throw error;
      }
    }
    return "conflict";
  }

  async readNamespaceLabels(namespace: string): Promise<Record<string, string>> {
    const object = await getOrUndefined<KubeObject>(this.#http, paths.namespace(namespace));
    return object?.metadata.labels ?? {};
  }

  async readPod(namespace: string, name: string): Promise<PodInfo> {
    const pod = await this.#http.get<PodObject>(paths.pod(namespace, name));
    return { uid: pod.metadata.uid ?? "", annotations: pod.metadata.annotations ?? {} };
  }

  async commitAttachment({ endpoint, claims, pools, podUID }: Attachment): Promise<void> {
    const nodeUID = await this.#nodeUID(endpoint.node);
    const recorded = { ...endpoint, ...(podUID ? { podUID } : {}) };
    await claimAll(this.#claims, claims, {
      nodeUID,
      pools,
      attempts: MAX_ATTEMPTS,
      exhausted: (ip) =>
        new Error(`claiming floating IP ${ip} kept conflicting after ${MAX_ATTEMPTS} attempts`),
      checkEach: false,
      // The endpoint once the claims are made: an agent that sees it takes
      // the sandbox for set up. The annotations for tools that read them.
      then: async () => {
        await Promise.all([
          this.#writeEndpoint(recorded, nodeUID),
          this.#http.patch(paths.podStatus(endpoint.namespace, endpoint.pod), {
            metadata: { annotations: podAnnotationsFor(endpoint) },
          }),
        ]);
      },
    });
  }

  release(target: ReleaseTarget): Promise<Released> {
    return releaseContainer(this.#http, this, target);
  }

  async getEndpoint(ref: EndpointRef): Promise<WorkloadEndpoint | undefined> {
    const name = await endpointObjectName(ref.node, ref.containerID, ref.ifname);
    const [object, pod] = await Promise.all([
      getOrUndefined<KubeObject>(this.#http, paths.endpoint(name)),
      ref.namespace && ref.pod
        ? getOrUndefined<PodObject>(this.#http, paths.pod(ref.namespace, ref.pod))
        : undefined,
    ]);
    if (!object) return undefined;
    const endpoint = endpointFromObject(object);
    // The NATs the pod asks for (its annotation), not the ones it holds: CHECK
    // compares the two. An annotation that does not parse asks for nothing here.
    const requested = pod?.metadata.annotations?.[FLOATING_IPS_ANNOTATION];
    try {
      const ips = requested === undefined ? [] : canonicalFloatingIps(parseFloatingIps(requested));
      const podIps = endpoint.ipNetworks.map((net) => net.split("/")[0] ?? "");
      endpoint.ipNATs = planBindings(ips, podIps).map(({ internalIP, externalIP }) => ({
        internalIP,
        externalIP,
      }));
    } catch (error) {
      if (!(error instanceof FloatingIpError)) throw error;
    }
    return endpoint;
  }

  async getClaim(ip: string): Promise<FloatingIpClaim | undefined> {
    const object = await getOrUndefined<KubeObject>(this.#http, paths.claim(ip));
    return object && claimFromObject(object);
  }

  async listAttachedContainers(node: string, network: string): Promise<AttachedContainer[]> {
    const [endpoints, claims] = await Promise.all([
      listEndpointObjects(this.#http, endpointNodeSelector(node)),
      listClaims(this.#http),
    ]);
    const attached = new Map<string, AttachedContainer>();
    const records = [
      ...endpoints.map(endpointFromObject),
      ...claims.map(({ value }) => value), // an older buoy's sandbox: no endpoint object
    ];
    for (const record of records) {
      if (record.node !== node || record.network !== network) continue;
      attached.set(record.containerID, {
        containerID: record.containerID,
        namespace: record.namespace,
        pod: record.pod,
      });
    }
    return [...attached.values()];
  }

  async reportRefusal(namespace: string, pod: string, message: string): Promise<void> {
    const now = new Date().toISOString();
    await this.#http.create(paths.events(namespace), {
      apiVersion: "v1",
      kind: "Event",
      metadata: { generateName: `${pod}.`, namespace },
      involvedObject: { apiVersion: "v1", kind: "Pod", namespace, name: pod },
      reason: "FloatingIPRefused",
      message,
      type: "Warning",
      source: { component: "buoy-cni", host: this.#reporter },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    });
  }

  async ping(): Promise<void> {
    await this.#http.get("/version");
  }

  // ---- helpers ------------------------------------------------------------

  /** Creates the endpoint object, or replaces the one a repeated ADD of this sandbox left. */
  async #writeEndpoint(endpoint: WorkloadEndpoint, nodeUID: string | undefined): Promise<void> {
    const name = await endpointObjectName(endpoint.node, endpoint.containerID, endpoint.endpoint);
    const object = endpointToObject(endpoint, name, nodeUID);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      try {
        await this.#http.create(paths.endpoints, object);
        return;
      } catch (error) {
        if (!isReason(error, "AlreadyExists")) throw error;
      }
      const current = await getOrUndefined<KubeObject>(this.#http, paths.endpoint(name));
      if (!current) continue;
      try {
        await this.#http.replace(paths.endpoint(name), {
          ...object,
          metadata: { ...object.metadata, resourceVersion: current.metadata.resourceVersion },
        });
        return;
      } catch (error) {
        if (!isReason(error, "Conflict", "NotFound")) throw error;
      }
    }
    throw new Error(`recording endpoint ${name} kept conflicting after ${MAX_ATTEMPTS} attempts`);
  }

  async #getClaim(ip: string): Promise<Versioned<FloatingIpClaim> | undefined> {
    const object = await getOrUndefined<KubeObject<Partial<FloatingIpClaim>>>(
      this.#http,
      paths.claim(ip),
    );
    return (
      object && { value: claimFromObject(object), revision: object.metadata.resourceVersion ?? "" }
    );
  }

  async #getBlock(cidr: string): Promise<Versioned<IpamBlock> | undefined> {
    const object = await getOrUndefined<KubeObject<Partial<IpamBlock>>>(
      this.#http,
      paths.block(cidr),
    );
    return object && blockFromObject(object);
  }

  /** Removes `ip` from the block again (as written: `block`), unless someone else holds it by now. */
  async #takeBack(block: Versioned<IpamBlock>, ip: string): Promise<void> {
    const handle = block.value.allocations[ip]?.handle;
    let current: Versioned<IpamBlock> | undefined = block;
    for (let attempt = 0; attempt < MAX_ATTEMPTS && current; attempt++) {
      if (handle === undefined || current.value.allocations[ip]?.handle !== handle) return;
      try {
        const written = await this.#http.replace<KubeObject>(
          paths.block(current.value.cidr),
          blockToObject(withoutHandle(current.value, handle), current.revision),
        );
        this.#cache?.blockSeen(written.metadata.name, written, current.revision);
        return;
      } catch (error) {
        if (!isReason(error, "Conflict")) throw error;
      }
      current = await this.#getBlock(block.value.cidr);
    }
  }

  async #nodeUID(node: string): Promise<string | undefined> {
    const cached = this.#cache?.nodeUID(node);
    if (cached !== undefined) return cached ?? undefined;
    return (await getOrUndefined<PodObject>(this.#http, paths.node(node)))?.metadata.uid;
  }
}

/**
 * The plugin's "try again later" (CNI code 11) covers a server that does not
 * answer, and one that answers "not now": 429 (throttled by priority and
 * fairness) and 5xx (etcd slow, the server shutting down).
 */
function unavailableAsDatastoreError(http: KubeHttp): KubeHttp {
  const wrap =
    <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await call(...args);
      } catch (error) {
        if (error instanceof KubeUnavailableError) {
          throw new DatastoreUnavailableError(`cannot reach the Kubernetes API: ${error.message}`);
        }
        if (error instanceof KubeApiError && (error.status === 429 || error.status >= 500)) {
          throw new DatastoreUnavailableError(
            `the Kubernetes API is not answering now: ${error.message}`,
          );
        }
        throw error;
      }
    };
  return {
    server: http.server,
    get: wrap(http.get.bind(http)) as KubeHttp["get"],
    create: wrap(http.create.bind(http)) as KubeHttp["create"],
    replace: wrap(http.replace.bind(http)) as KubeHttp["replace"],
    patch: wrap(http.patch.bind(http)) as KubeHttp["patch"],
    delete: wrap(http.delete.bind(http)),
  };
}
