// The incremental plan must be the complete plan: random records, changed
// one at a time, re-planned only where a change reaches, compared after every
// change with a plan of everything from scratch.
import { FLOATING_POOL } from "../../test/support/agent-records.js";
import { describe, expect, it } from "vitest";
import type { RawRecord, RecordKind } from "../datastore/agent-source.js";
import type { IpPool } from "../model/records.js";
import { AgentModel, nothingTouched } from "./agent-model.js";
import { NatState, type PlanInputs } from "./nat-state.js";

const NODE = "node-1";
const POOLS: IpPool[] = [FLOATING_POOL];

/** A small deterministic generator (mulberry32), so a failure replays. */
function random(seed: number) {
  let state = seed;
  const next = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  return { next, pick };
}

// Few of each, so that endpoints contend for floating IPs and pod addresses.
const FLOATING = [
  "203.0.113.1",
  "203.0.113.2",
  "203.0.113.3",
  "203.0.113.4",
  "198.51.100.9",
  "nope",
];
const PODS = ["10.244.0.1", "10.244.0.2", "10.244.0.3", "fd00::1"];
const INTERFACES = ["calia", "calib", "calic"];
const CONTAINERS = ["c0", "c1", "c2", "c3", "c4"];

function generate(rng: ReturnType<typeof random>, kind: RecordKind, key: string): unknown {
  if (kind === "endpoint") {
    const pod = rng.pick(PODS);
    return {
      node: rng.next() < 0.9 ? NODE : "node-2",
      namespace: "default",
      pod: key,
      containerID: key.slice(key.lastIndexOf("/") + 1),
      endpoint: "eth0",
      interfaceName: rng.pick(INTERFACES),
      mac: "",
      ipNetworks: [`${pod}/32`],
      ipNATs: Array.from({ length: Math.floor(rng.next() * 3) }, () => ({
        internalIP: rng.next() < 0.8 ? pod : rng.pick(PODS),
        externalIP: rng.pick(FLOATING),
      })),
      ...(rng.next() < 0.5 ? { egress: true } : {}),
      network: "k8s-pod-network",
      createdAt: "",
    };
  }
  if (kind === "claim") {
    return {
      ip: key.slice(key.lastIndexOf("/") + 1),
      containerID: rng.pick(CONTAINERS),
      node: NODE,
    };
  }
  return {
    ip: rng.pick(FLOATING.slice(0, 4)),
    node: rng.pick([NODE, "node-2", "node-3"]),
    internalIP: rng.pick(PODS),
    programmedSince: "",
  };
}

describe("NatState", () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`re-planning what a change touches gives the complete plan (seed ${seed})`, () => {
      const rng = random(seed);
      const model = new AgentModel(NODE, () => {});
      const state = new NatState();
      let interfaces = new Set(INTERFACES);
      const inputs = (): PlanInputs => ({ node: NODE, pools: POOLS, hostInterfaces: interfaces });
      state.planAll(model, inputs(), true);
      const records = new Map<string, { kind: RecordKind; record: RawRecord }>();
      for (let step = 0; step < 400; step++) {
        const touched = nothingTouched();
        let changedInterfaces = new Set<string>();
        const roll = rng.next();
        if (roll < 0.05) {
          // A pod's veth comes or goes without its endpoint changing.
          const name = rng.pick(INTERFACES);
          interfaces = new Set(interfaces);
          if (interfaces.has(name)) interfaces.delete(name);
          else interfaces.add(name);
          changedInterfaces = new Set([name]);
        } else {
          const kind = rng.pick<RecordKind>(["endpoint", "endpoint", "claim", "status"]);
          const key =
            kind === "endpoint"
              ? `/ep/${rng.pick(CONTAINERS)}`
              : kind === "claim"
                ? `/claim/${rng.pick(FLOATING.slice(0, 5))}`
                : `/status/${rng.pick(["node-2", "node-3", NODE])}/${rng.next() < 0.5 ? "a" : "b"}`;
          if (rng.next() < 0.25 && records.has(key)) {
            records.delete(key);
            model.apply(kind, key, undefined, touched);
          } else {
            const record = { key, version: String(step), value: generate(rng, kind, key) };
            records.set(key, { kind, record });
            model.apply(kind, key, record, touched);
          }
        }
        const changes = state.replan(model, inputs(), touched, changedInterfaces);
        const fresh = new AgentModel(NODE, () => {});
        const all = nothingTouched();
        for (const [key, { kind, record }] of records) fresh.apply(kind, key, record, all);
        const complete = new NatState();
        complete.planAll(fresh, inputs(), true);
        const sorted = (plan: ReturnType<NatState["plan"]>) => ({
          ...plan,
          waiting: [...(plan.waiting ?? [])].sort((a, b) => (a.floatingIP < b.floatingIP ? -1 : 1)),
        });
        expect(sorted(state.plan()), `step ${step}`).toEqual(sorted(complete.plan()));
        // What changed was reported: every binding now present or gone is in the changes.
        for (const binding of changes.added)
          expect(state.binding(binding.floating)).toEqual(binding);
      }
    });
  }

  it("re-plans only the endpoints connected to a change", () => {
    const model = new AgentModel(NODE, () => {});
    const state = new NatState();
    const touched = nothingTouched();
    for (let i = 0; i < 100; i++) {
      const floating = `203.0.113.${i + 1}`;
      const pod = `10.244.0.${i + 1}`;
      const record = (value: unknown, key: string) => ({ key, version: "1", value });
      model.apply(
        "endpoint",
        `/ep/${i}`,
        record(generateFixed(`c${i}`, pod, floating), `/ep/${i}`),
        touched,
      );
      model.apply(
        "claim",
        `/claim/${floating}`,
        record({ ip: floating, containerID: `c${i}`, node: NODE }, `/claim/${floating}`),
        touched,
      );
    }
    const inputs = { node: NODE, pools: POOLS, hostInterfaces: new Set(["calia"]) };
    state.planAll(model, inputs, true);
    expect(state.size).toBe(100);
    const change = nothingTouched();
    model.apply("claim", "/claim/203.0.113.5", undefined, change);
    const changes = state.replan(model, inputs, change);
    expect(changes.removed.map((b) => b.floating)).toEqual(["203.0.113.5"]);
    expect(changes.added).toEqual([]);
    expect([...changes.addresses].sort()).toEqual(["10.244.0.5", "203.0.113.5"]);
    expect(state.size).toBe(99);
  });
});

function generateFixed(containerID: string, pod: string, floating: string) {
  return {
    node: NODE,
    namespace: "default",
    pod: containerID,
    containerID,
    endpoint: "eth0",
    interfaceName: "calia",
    mac: "",
    ipNetworks: [`${pod}/32`],
    ipNATs: [{ internalIP: pod, externalIP: floating }],
    network: "k8s-pod-network",
    createdAt: "",
  };
}
