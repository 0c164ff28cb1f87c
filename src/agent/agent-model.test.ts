// A complete read applied page by page must leave the model, and report as
// touched, what the same read applied whole does.
import { describe, expect, it } from "vitest";
import type { AgentState, RawRecord, RecordKind } from "../datastore/agent-source.js";
import { AgentModel, type Touched } from "./agent-model.js";

const NODE = "node-1";

const endpoint = (container: string, pod: string, floating: string): RawRecord => ({
  key: `workloadendpoints/${NODE}/${container}/eth0`,
  version: `${container}-${floating}`,
  value: {
    node: NODE,
    namespace: "default",
    pod: container,
    containerID: container,
    endpoint: "eth0",
    interfaceName: `cali${container}`,
    mac: "",
    ipNetworks: [`${pod}/32`],
    ipNATs: [{ internalIP: pod, externalIP: floating }],
    network: "k8s-pod-network",
    createdAt: "",
  },
});

const claim = (floating: string, container: string): RawRecord => ({
  key: `floatingipclaims/${floating}`,
  version: `${container}`,
  value: { ip: floating, containerID: container, node: NODE },
});

const state = (records: Partial<AgentState>): AgentState => ({
  endpoint: [],
  claim: [],
  pool: [],
  status: [],
  node: [],
  affinity: [],
  peer: [],
  borrowed: [],
  ...records,
});

/** What a model holds and what the read touched, comparable with toEqual. */
function summary(model: AgentModel, touched: Touched) {
  return {
    endpoints: model
      .all("endpoint")
      .map((value) => value.containerID)
      .sort(),
    claims: model
      .all("claim")
      .map((value) => `${value.ip}=${value.containerID}`)
      .sort(),
    addresses: [...touched.addresses].sort(),
    endpointKeys: [...touched.endpoints].sort(),
  };
}

describe("AgentModel", () => {
  it("replacing() applied page by page gives what replaceAll() gives, deleting what no page held", () => {
    const before = state({
      endpoint: [
        endpoint("a", "10.0.0.1", "203.0.113.1"),
        endpoint("b", "10.0.0.2", "203.0.113.2"),
      ],
      claim: [claim("203.0.113.1", "a"), claim("203.0.113.2", "b")],
    });
    // b is gone, a is unchanged, c is new, in pages of one, kinds interleaved.
    const after = state({
      endpoint: [
        endpoint("a", "10.0.0.1", "203.0.113.1"),
        endpoint("c", "10.0.0.3", "203.0.113.3"),
      ],
      claim: [claim("203.0.113.1", "a"), claim("203.0.113.3", "c")],
    });
    const whole = new AgentModel(NODE, () => {});
    whole.replaceAll(before);
    const wholeTouched = whole.replaceAll(after);

    const paged = new AgentModel(NODE, () => {});
    paged.replaceAll(before);
    const replacing = paged.replacing();
    const pages: [RecordKind, RawRecord][] = [
      ["endpoint", after.endpoint[1] as RawRecord],
      ["claim", after.claim[0] as RawRecord],
      ["endpoint", after.endpoint[0] as RawRecord],
      ["claim", after.claim[1] as RawRecord],
    ];
    for (const [kind, record] of pages) replacing.take(kind, [record]);
    const pagedTouched = replacing.finish();

    expect(summary(paged, pagedTouched)).toEqual(summary(whole, wholeTouched));
    expect(summary(paged, pagedTouched)).toEqual({
      endpoints: ["a", "c"],
      claims: ["203.0.113.1=a", "203.0.113.3=c"],
      addresses: ["10.0.0.2", "10.0.0.3", "203.0.113.2", "203.0.113.3"],
      endpointKeys: [`workloadendpoints/${NODE}/b/eth0`, `workloadendpoints/${NODE}/c/eth0`],
    });
  });
});
